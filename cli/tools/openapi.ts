/**
 * Writes docs/openapi.json: the REST API's OpenAPI document, exactly as `GET /openapi.json`
 * answers it (taken from an API built in-process, never started), pretty-printed for reading
 * and diffs. test/api/rest/openapi.test.ts fails when the copy is stale.
 *
 * @example
 * ```sh
 * deno task openapi            # writes docs/openapi.json
 * deno task openapi out.json   # writes another file
 * ```
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { restApiSection } from '../../src/api/rest/config.ts'
import { restApi } from '../../src/api/rest/server.ts'
import type { ClusterRPC } from '../../src/components.ts'

/** Where the committed copy lives. */
export const OPENAPI_FILE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'docs',
  'openapi.json',
)

/** The document as the REST API serves it, as the text of docs/openapi.json. */
export async function openApiText(): Promise<string> {
  // The document needs the route table only: no handler runs, so no cluster is needed.
  const api = restApi(restApiSection.defaults(), {
    cluster: {} as ClusterRPC,
    configDir: '.',
    peerId: '',
  })
  const res = await api.handler(new Request('http://127.0.0.1/openapi.json'))
  if (res.status !== 200) throw new Error(`GET /openapi.json: ${res.status} ${await res.text()}`)
  return JSON.stringify(await res.json(), null, 2) + '\n'
}

if (import.meta.main) {
  const out = Deno.args[0] ?? OPENAPI_FILE
  await Deno.writeTextFile(out, await openApiText())
  console.log(`wrote ${out}`)
}
