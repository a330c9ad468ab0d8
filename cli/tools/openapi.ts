/**
 * Writes docs/openapi.json: the REST API's OpenAPI document, as `GET /openapi.json` answers it
 * (from the same route table), pretty-printed for reading and diffs. test/api/rest/openapi.test.ts fails when the copy is stale.
 *
 * @example
 * ```sh
 * deno task openapi            # writes docs/openapi.json
 * deno task openapi out.json   # writes another file
 * ```
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { restRoutes } from '../../src/api/rest/server.ts'
import { restOpenApi } from '../../src/api/rest/schemas.ts'
import type { ClusterRPC } from '../../src/components.ts'

/** Where the committed copy lives. */
export const OPENAPI_FILE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'docs',
  'openapi.json',
)

/** The document as `GET /openapi.json` answers it, as the text of docs/openapi.json. */
export function openApiText(): string {
  // The document needs the route table only: no handler runs, so no cluster is needed.
  const routes = restRoutes({ cluster: {} as ClusterRPC, configDir: '.', peerId: '' })
  return JSON.stringify(restOpenApi(routes), null, 2) + '\n'
}

if (import.meta.main) {
  const out = Deno.args[0] ?? OPENAPI_FILE
  await Deno.writeTextFile(out, openApiText())
  console.log(`wrote ${out}`)
}
