/**
 * The web dashboard's routes on the REST API's listener: the page and its scripts (`GET /ui`,
 * `/ui/*.js`, `/ui/style.css`) and one JSON route of its own, `GET /ui/api/pins`, a page of the
 * pinset from a cursor (src/api/rest/ui/pin_page.ts). Everything else the page shows comes from
 * the REST API's own routes. The routes sit behind the same auth as every REST route.
 *
 * The page lives at `/ui`, not `/ui/`: the shared HTTP pipeline answers every path with a
 * trailing slash with a 307 to the path without it (the reference's behaviour, kept for every
 * route), so `/ui/` already redirects to `/ui`. The page names its scripts relative to itself
 * (`ui/app.js`) and the API relative to the root (`peers`), so it also works behind a proxy that
 * mounts the API under a prefix.
 *
 * The assets are TypeScript string modules, not files read at run time: `deno compile` and
 * `deno bundle` carry modules, not the files beside them, and a module costs nothing until a
 * route imports it (the assets load with the first dashboard request, not with the peer).
 *
 * @example
 * ```ts
 * const routes: ApiRoute[] = [...restRoutes, ...uiRoutes(cluster)]
 * await api.handler(new Request('http://x/ui/api/pins?limit=20&q=photos'))
 * ```
 */
import type { ClusterRPC } from '../../../components.ts'
import { PIN_TYPE_BITS } from '../../../types/pin.ts'
import type { ApiRoute, RequestContext } from '../../common/http_api.ts'
import { DEFAULT_PAGE, MAX_PAGE, MAX_SCAN, parsePageQuery, pinPage } from './pin_page.ts'

/** The headers of every dashboard asset: no third-party anything, no framing. */
const ASSET_HEADERS: [string, string][] = [
  ['Cache-Control', 'no-cache'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
  [
    'Content-Security-Policy',
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  ],
]

type AssetName = 'index' | 'app' | 'graph' | 'style'

const TYPES: Record<AssetName, string> = {
  index: 'text/html; charset=utf-8',
  app: 'text/javascript; charset=utf-8',
  graph: 'text/javascript; charset=utf-8',
  style: 'text/css; charset=utf-8',
}

/**
 * A route with its OpenAPI description (the shape of src/api/common/openapi.ts's RouteDoc,
 * written out so that this table also fits an API whose routes carry no docs).
 */
export type UiRoute = ApiRoute & {
  doc: {
    operationId: string
    summary: string
    description?: string
    tags: string[]
    query?: Record<string, { description: string; schema?: Record<string, unknown> }>
    responses: Record<number, {
      description: string
      json?: Record<string, unknown>
      content?: { type: string; schema: Record<string, unknown> }
    }>
  }
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })

async function assetText(name: AssetName): Promise<string> {
  const a = await import('./assets.ts')
  return { index: a.INDEX_HTML, app: a.APP_JS, graph: a.GRAPH_JS, style: a.STYLE_CSS }[name]
}

function asset(name: AssetName) {
  return async (ctx: RequestContext): Promise<Response> => {
    const body = await assetText(name)
    const headers = ctx.r.headers(ASSET_HEADERS)
    headers.set('Content-Type', TYPES[name])
    return new Response(ctx.req.method === 'HEAD' ? null : body, { status: 200, headers })
  }
}

/** The dashboard's routes; `cluster` is the REST API's. */
export function uiRoutes(cluster: ClusterRPC): UiRoute[] {
  async function pins(ctx: RequestContext): Promise<Response> {
    const q = parsePageQuery(ctx.query)
    const ac = new AbortController()
    const signal = AbortSignal.any([ac.signal, ctx.signal])
    try {
      // A listing from the cursor's key: a page costs O(page) wherever it is in the pinset.
      const source = cluster.pins(PIN_TYPE_BITS.all, signal, q.after)
      return ctx.r.json(200, await pinPage(source, q))
    } finally {
      ac.abort()
    }
  }
  const file = (
    pattern: string,
    name: AssetName,
    operationId: string,
    summary: string,
  ): UiRoute => ({
    method: 'GET',
    pattern,
    handler: asset(name),
    doc: {
      operationId,
      summary,
      tags: ['dashboard'],
      responses: {
        200: { description: summary, content: { type: TYPES[name], schema: { type: 'string' } } },
      },
    },
  })
  return [
    file('/ui', 'index', 'uiPage', 'The web dashboard (docs/dashboard.md)'),
    file('/ui/app.js', 'app', 'uiAppScript', "The dashboard's script (an ES module)"),
    file('/ui/graph.js', 'graph', 'uiGraphScript', "The dashboard's graph drawing (an ES module)"),
    file('/ui/style.css', 'style', 'uiStylesheet', "The dashboard's stylesheet"),
    {
      method: 'GET',
      pattern: '/ui/api/pins',
      handler: pins,
      doc: {
        operationId: 'uiPinPage',
        summary: 'A page of the pinset, in CID order, from a cursor',
        description: 'Reads the pinset in key order after `after` and stops at `limit` matches ' +
          `or after ${MAX_SCAN} pins read (then \`next\` is set and the page may be short: the ` +
          'search goes on from there). An extension for the dashboard.',
        tags: ['dashboard'],
        query: {
          after: { description: "The previous page's `next`: only CIDs that sort after it" },
          limit: {
            description: `Matches per page, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})`,
            schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE },
          },
          q: { description: 'A case-insensitive substring of the CID or the name' },
          type: {
            description: 'Pin types, comma-separated: pin, meta-pin, clusterdag-pin, shard-pin',
          },
        },
        responses: {
          200: {
            description: 'The page',
            json: {
              type: 'object',
              required: ['pins', 'next', 'scanned'],
              properties: {
                pins: { type: 'array', items: ref('Pin') },
                next: {
                  type: ['string', 'null'],
                  description: 'The cursor of the next page; null at the end',
                },
                scanned: { type: 'integer', description: 'Pins read for this page' },
              },
            },
          },
          400: { description: 'A bad limit or type', json: ref('Error') },
        },
      },
    },
  ]
}
