/**
 * Helpers for the REST API tests: a config with overrides, an in-process API over the fake
 * cluster, one-line request calls, NDJSON decoding, and multipart bodies shaped like the ones Go's
 * `ipfs-cluster-ctl add` sends (boxo's MultiFileReader: url-escaped names, directory parts).
 */
import { type RestApiConfig, restApiSection } from '../../../src/api/rest/config.ts'
import { restApi } from '../../../src/api/rest/server.ts'
import type { HttpApi } from '../../../src/api/common/http_api.ts'
import type { IPFSConnector } from '../../../src/components.ts'
import { FAKE_PEER_ID, type FakeCluster, fakeCluster } from '../../support/fake_cluster.ts'
import { fakeIpfs } from '../../support/fake_ipfs.ts'
import { type AddContent, contentAdder } from '../../../src/adder/content.ts'
import type { ClusterRPC } from '../../../src/components.ts'

/** An adder of the fake peer: every block goes to `ipfs`, whichever peer it is for. */
export function contentAdderOver(cluster: ClusterRPC, ipfs: IPFSConnector): AddContent {
  return contentAdder({
    self: FAKE_PEER_ID,
    cluster,
    blockStream: (_peer, blocks, signal) => ipfs.blockStream(blocks, signal),
  })
}

/** A REST config: the defaults, a random local port, and the given keys (JSON form). */
export function restConfig(overrides: Record<string, unknown> = {}): RestApiConfig {
  return restApiSection.load({ http_listen_multiaddress: ['/ip4/127.0.0.1/tcp/0'], ...overrides })
}

/** An API over a fresh fake cluster (not listening). */
export function testApi(
  overrides: Record<string, unknown> = {},
  extra: { ipfs?: IPFSConnector; configDir?: string } = {},
): { api: HttpApi; cluster: FakeCluster } {
  const cluster = fakeCluster()
  const api = restApi(restConfig(overrides), {
    cluster,
    configDir: extra.configDir ?? Deno.cwd(),
    peerId: FAKE_PEER_ID,
    add: extra.ipfs ? contentAdderOver(cluster, extra.ipfs) : undefined,
  })
  return { api, cluster }
}

/** Calls a route in-process. */
export function call(
  api: HttpApi,
  method: string,
  path: string,
  init: { body?: BodyInit; headers?: Record<string, string> } = {},
): Promise<Response> {
  return api.handler(new Request(`http://127.0.0.1:9094${path}`, { method, ...init }))
}

/** Reads a JSON body (checking the trailing newline Go's encoder writes). */
export async function json(res: Response): Promise<unknown> {
  const text = await res.text()
  if (!text.endsWith('\n')) {
    throw new Error(`body does not end with a newline: ${JSON.stringify(text)}`)
  }
  return JSON.parse(text)
}

/** Reads an NDJSON body into values. */
export async function ndjson(res: Response): Promise<unknown[]> {
  const text = await res.text()
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l))
}

/** A part of an add request. */
export type AddPart =
  | { path: string; content: string | Uint8Array }
  | { path: string; dir: true }
  | { path: string; symlink: string }

/** Builds a multipart body the way the Go client encodes files and directories. */
export function multipart(parts: AddPart[], boundary = 'c0ffee0123456789'): {
  body: Uint8Array<ArrayBuffer>
  contentType: string
} {
  const enc = new TextEncoder()
  const chunks: Uint8Array[] = []
  for (const p of parts) {
    const type = 'dir' in p
      ? 'application/x-directory'
      : 'symlink' in p
      ? 'application/symlink'
      : 'application/octet-stream'
    const name = encodeURIComponent(p.path)
    chunks.push(enc.encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n` +
        `Content-Type: ${type}\r\n\r\n`,
    ))
    if ('content' in p) {
      chunks.push(typeof p.content === 'string' ? enc.encode(p.content) : p.content)
    }
    if ('symlink' in p) chunks.push(enc.encode(p.symlink))
    chunks.push(enc.encode('\r\n'))
  }
  chunks.push(enc.encode(`--${boundary}--\r\n`))
  const n = chunks.reduce((a, c) => a + c.length, 0)
  const body = new Uint8Array(n)
  let off = 0
  for (const c of chunks) {
    body.set(c, off)
    off += c.length
  }
  return { body, contentType: `multipart/form-data; boundary=${boundary}` }
}

/** A small tree as `add -r mydir` sends it: files, an empty directory, a subdirectory. */
export const DIR: AddPart[] = [
  { path: 'mydir', dir: true },
  { path: 'mydir/a.txt', content: 'a\n' },
  { path: 'mydir/empty', dir: true },
  { path: 'mydir/sub', dir: true },
  { path: 'mydir/sub/b.txt', content: 'b\n' },
]

/** POST /add of the parts (multipart as the Go client sends it) to a fresh API over `ipfs`. */
export async function postAdd(
  parts: AddPart[],
  query = '',
  ipfs: IPFSConnector = fakeIpfs(),
): Promise<{ res: Response; cluster: FakeCluster; ipfs: IPFSConnector }> {
  const { api, cluster } = testApi({}, { ipfs })
  const mp = multipart(parts)
  const res = await call(api, 'POST', `/add${query}`, {
    body: mp.body,
    headers: { 'content-type': mp.contentType },
  })
  return { res, cluster, ipfs }
}

/** The deterministic 1 MiB + 12345 bytes file the expected Kubo CIDs were computed from. */
export function bigFile(): Uint8Array {
  const n = 1048576 + 12345
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 7 + Math.floor(i / 1000)) % 251
  return out
}

/** The deterministic 5000 bytes file used with chunker=size-1000. */
export function smallFile(): Uint8Array {
  const out = new Uint8Array(5000)
  for (let i = 0; i < out.length; i++) out[i] = (i * 13) % 256
  return out
}
