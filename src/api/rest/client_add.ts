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
}

type Entry =
  | { kind: 'file'; name: string; abs?: string; open: () => AsyncIterable<Uint8Array> }
  | { kind: 'dir'; name: string; abs: string; hidden: boolean }
  | { kind: 'symlink'; name: string; abs: string; target: string }

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
  }
}

async function entryFor(
  name: string,
  fpath: string,
  st: Deno.FileInfo,
  hidden: boolean,
): Promise<Entry> {
  const abs = resolve(fpath)
  if (st.isSymlink) return { kind: 'symlink', name, abs, target: await Deno.readLink(fpath) }
  if (st.isDirectory) return { kind: 'dir', name, abs, hidden }
  return { kind: 'file', name, abs, open: () => readFile(fpath) }
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

async function* multipart(
  top: Entry[],
  boundary: string,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  let first = true
  const header = (name: string, type: string, abs?: string) => {
    const lines = [first ? `--${boundary}\r\n` : `\r\n--${boundary}\r\n`]
    first = false
    // Header keys sorted, as Go's textproto writes a MIMEHeader.
    if (abs !== undefined) lines.push(`Abspath-Encoded: ${queryEscape(abs)}\r\n`)
    lines.push(`Content-Disposition: form-data; name="file"; filename="${queryEscape(name)}"\r\n`)
    lines.push(`Content-Type: ${type}\r\n\r\n`)
    return enc.encode(lines.join(''))
  }
  async function* walk(e: Entry, path: string): AsyncGenerator<Uint8Array> {
    signal?.throwIfAborted()
    const name = path ? `${path}/${e.name}` : e.name
    switch (e.kind) {
      case 'file':
        yield header(name, 'application/octet-stream', e.abs)
        for await (const chunk of e.open()) {
          signal?.throwIfAborted()
          yield chunk
        }
        return
      case 'symlink':
        yield header(name, 'application/symlink', e.abs)
        yield enc.encode(e.target)
        return
      case 'dir': {
        yield header(name, 'application/x-directory', e.abs)
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
