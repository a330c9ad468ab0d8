/**
 * The body of `POST /add`: local files and directories (and http(s) URLs, downloaded by the
 * client) as the multipart/form-data stream the reference client writes (boxo's MultiFileReader):
 * one part per file, directory or symlink, depth first, names URL-escaped, read lazily so that
 * large trees are never held in memory.
 *
 * @example
 * ```ts
 * const body = await addBody(['./dir'], { ...defaultAddParams(), recursive: true })
 * fetch(url, { method: 'POST', body: ReadableStream.from(body.stream()), headers: { 'Content-Type':
 *   `multipart/form-data; boundary=${body.boundary}` } })
 * ```
 */
import { basename, posix, resolve } from 'node:path'
import { defaultPinOptions, pinOptionsToQuery } from '../../types/mod.ts'
import type { AddParams } from './client_types.ts'

/** The reference's `api.DefaultAddParams()`. */
export function defaultAddParams(): AddParams {
  return {
    ...defaultPinOptions(),
    shard_size: 104857600,
    local: false,
    recursive: false,
    hidden: false,
    wrap: false,
    shard: false,
    stream_channels: true,
    format: 'unixfs',
    no_pin: false,
    layout: '',
    chunker: 'size-262144',
    raw_leaves: false,
    progress: false,
    cid_version: 0,
    hash_fun: 'sha2-256',
    no_copy: false,
  }
}

/** The `/add` query string, keys sorted as Go's url.Values.Encode writes them. */
export function addParamsToQuery(p: AddParams): string {
  const q = pinOptionsToQuery(p)
  const b = (x: boolean) => (x ? 'true' : 'false')
  q.set('shard', b(p.shard))
  q.set('local', b(p.local))
  q.set('recursive', b(p.recursive))
  q.set('layout', p.layout)
  q.set('chunker', p.chunker)
  q.set('raw-leaves', b(p.raw_leaves))
  q.set('hidden', b(p.hidden))
  q.set('wrap-with-directory', b(p.wrap))
  q.set('progress', b(p.progress))
  q.set('cid-version', String(p.cid_version))
  q.set('hash', p.hash_fun)
  q.set('stream-channels', b(p.stream_channels))
  q.set('nocopy', b(p.no_copy))
  q.set('format', p.format)
  q.set('no-pin', b(p.no_pin))
  q.sort()
  return q.toString()
}

/** A prepared multipart body. `stream()` may be called again for a retry. */
export interface AddBody {
  boundary: string
  stream(): AsyncIterable<Uint8Array>
  /** Bytes of file content it will send (a progress bar's total); undefined with a URL. */
  contentSize(): Promise<number | undefined>
  /**
   * The whole body's length (sent as Content-Length), undefined with a URL. A chunked upload
   * costs Deno's HTTP server far more CPU while it reads slower than the client sends (an add
   * to other peers): 65 ms a MiB against 6 (docs/performance.md).
   */
  length(): Promise<number | undefined>
}

/** File mode and mtime, as boxo puts them in the part's `name="file?mode=…&mtime=…"`. */
interface Meta {
  mode?: number
  mtime?: Date | null
}

type Entry =
  & Meta
  & (
    | { kind: 'file'; name: string; abs?: string; open: () => AsyncIterable<Uint8Array> }
    | { kind: 'dir'; name: string; abs: string; hidden: boolean }
    | { kind: 'symlink'; name: string; abs: string; target: string }
  )

/**
 * Checks the inputs (a directory needs `recursive`; `nocopy` only for URLs) and prepares the
 * body. Throws with the reference's messages.
 */
export async function addBody(
  paths: string[],
  p: AddParams,
  signal?: AbortSignal,
): Promise<AddBody> {
  const top: Entry[] = []
  for (const raw of paths) {
    if (/^https?:\/\//i.test(raw)) {
      const url = new URL(raw)
      top.push({
        kind: 'file',
        name: posix.basename(url.pathname) || '/',
        abs: url.toString(),
        open: () => download(url, signal),
      })
      continue
    }
    if (p.no_copy) throw new Error('nocopy option is only valid for URLs')
    let fpath = raw === '.' ? await Deno.realPath(Deno.cwd()) : raw
    fpath = posix.normalize(fpath.replaceAll('\\', '/'))
    if (fpath.length > 1) fpath = fpath.replace(/\/+$/, '')
    const st = await Deno.lstat(fpath)
    if (st.isDirectory && !p.recursive) {
      throw new Error(`${fpath} is a directory, but Recursive option is not set`)
    }
    top.push(await entryFor(basename(fpath), fpath, st, p.hidden))
  }
  const boundary = randomBoundary()
  return {
    boundary,
    stream: () => multipart(top, boundary, signal),
    length: () => multipartLength(top, boundary),
    contentSize: () => contentSize(top),
  }
}

/** The bytes of the files under the entries (what multipart sends of content). */
async function contentSize(top: Entry[]): Promise<number | undefined> {
  let total = 0
  for await (const p of pieces(top, '')) {
    if (p instanceof Uint8Array) continue
    if (p.abs === undefined || isUrl(p.abs)) return undefined
    total += (await Deno.stat(p.abs)).size
  }
  return total
}

async function entryFor(
  name: string,
  fpath: string,
  st: Deno.FileInfo,
  hidden: boolean,
): Promise<Entry> {
  const abs = resolve(fpath)
  const meta: Meta = { mode: goFileMode(st), mtime: st.mtime }
  if (st.isSymlink) {
    return { ...meta, kind: 'symlink', name, abs, target: await Deno.readLink(fpath) }
  }
  if (st.isDirectory) return { ...meta, kind: 'dir', name, abs, hidden }
  return { ...meta, kind: 'file', name, abs, open: () => readFile(fpath) }
}

/** Go's os.FileMode of a stat: permission bits plus Go's own type and special bits. */
function goFileMode(st: Deno.FileInfo): number {
  if (st.mode === null) return 0
  let m = st.mode & 0o777
  if (st.mode & 0o4000) m += 2 ** 23 // ModeSetuid
  if (st.mode & 0o2000) m += 2 ** 22 // ModeSetgid
  if (st.mode & 0o1000) m += 2 ** 20 // ModeSticky
  if (st.isDirectory) m += 2 ** 31 // ModeDir
  if (st.isSymlink) m += 2 ** 27 // ModeSymlink
  return m
}

/** boxo's Content-Disposition: form field `file`, with mode/mtime parameters when known. */
function disposition(e: Entry, name: string): string {
  const params = new URLSearchParams()
  if (e.mode) params.set('mode', '0' + e.mode.toString(8))
  if (e.mtime && e.mtime.getTime() !== 0) {
    const ms = e.mtime.getTime()
    params.set('mtime', String(Math.floor(ms / 1000)))
    const nsecs = (((ms % 1000) + 1000) % 1000) * 1e6
    if (nsecs > 0) params.set('mtime-nsecs', String(nsecs))
  }
  const q = params.size ? `?${params}` : ''
  return `form-data; name="file${q}"; filename="${queryEscape(name)}"`
}

async function* readFile(fpath: string): AsyncGenerator<Uint8Array> {
  using f = await Deno.open(fpath, { read: true })
  for await (const chunk of f.readable) yield chunk
}

async function* download(url: URL, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const res = await fetch(url, { signal })
  if (!res.ok || !res.body) {
    await res.body?.cancel()
    throw new Error(`got non-2XX status code ${res.status}: ${url}`)
  }
  yield* res.body
}

const enc = new TextEncoder()

/** A piece of the body: framing bytes, or the content of a file (read when streaming). */
type Piece = Uint8Array | Extract<Entry, { kind: 'file' }>

/** The body as pieces, depth first: one walk for both `stream()` and `length()`. */
async function* pieces(
  top: Entry[],
  boundary: string,
  signal?: AbortSignal,
): AsyncGenerator<Piece> {
  let first = true
  const header = (e: Entry, name: string, type: string) => {
    const lines = [first ? `--${boundary}\r\n` : `\r\n--${boundary}\r\n`]
    first = false
    // Header keys sorted, as Go's textproto writes a MIMEHeader.
    // Only regular files (boxo's FileInfo nodes) carry their absolute path.
    if (e.kind === 'file' && e.abs !== undefined) {
      lines.push(`Abspath-Encoded: ${queryEscape(e.abs)}\r\n`)
    }
    lines.push(`Content-Disposition: ${disposition(e, name)}\r\n`)
    lines.push(`Content-Type: ${type}\r\n\r\n`)
    return enc.encode(lines.join(''))
  }
  async function* walk(e: Entry, path: string): AsyncGenerator<Piece> {
    signal?.throwIfAborted()
    const name = path ? `${path}/${e.name}` : e.name
    switch (e.kind) {
      case 'file':
        yield header(e, name, 'application/octet-stream')
        yield e
        return
      case 'symlink':
        yield header(e, name, 'application/symlink')
        yield enc.encode(e.target)
        return
      case 'dir': {
        yield header(e, name, 'application/x-directory')
        const children: string[] = []
        for await (const d of Deno.readDir(e.abs)) {
          if (!e.hidden && d.name.startsWith('.')) continue
          children.push(d.name)
        }
        children.sort()
        for (const c of children) {
          const child = `${e.abs}/${c}`
          yield* walk(await entryFor(c, child, await Deno.lstat(child), e.hidden), name)
        }
      }
    }
  }
  for (const e of top) yield* walk(e, '')
  yield enc.encode(`\r\n--${boundary}--\r\n`)
}

async function* multipart(
  top: Entry[],
  boundary: string,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  for await (const p of pieces(top, boundary, signal)) {
    if (p instanceof Uint8Array) {
      yield p
      continue
    }
    // With a Content-Length sent, a file that changed size since would corrupt the request.
    const expected = p.abs !== undefined && !isUrl(p.abs)
      ? (await Deno.stat(p.abs)).size
      : undefined
    let n = 0
    for await (const chunk of p.open()) {
      signal?.throwIfAborted()
      n += chunk.length
      yield chunk
    }
    if (expected !== undefined && n !== expected) {
      throw new Error(`${p.abs} changed size while it was being added`)
    }
  }
}

/** The body's exact length, or undefined when a URL's content is part of it. */
async function multipartLength(top: Entry[], boundary: string): Promise<number | undefined> {
  let total = 0
  for await (const p of pieces(top, boundary)) {
    if (p instanceof Uint8Array) total += p.length
    else if (p.abs === undefined || isUrl(p.abs)) return undefined
    else total += (await Deno.stat(p.abs)).size
  }
  return total
}

const isUrl = (s: string) => /^https?:/i.test(s)

/** Go's url.QueryEscape: only A-Z a-z 0-9 - _ . ~ stay; space becomes '+'. */
export function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replaceAll('%20', '+')
}

function randomBoundary(): string {
  const b = crypto.getRandomValues(new Uint8Array(30))
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
}
