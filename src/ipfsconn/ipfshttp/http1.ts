/**
 * The HTTP/1.1 client under the Kubo connector: `POST` requests over a pool of keep-alive
 * connections (TCP, or a unix socket), answers framed by Content-Length, chunked encoding (its
 * trailers kept, where Kubo reports `X-Stream-Error`) or the end of the connection, and request
 * bodies sent whole or streamed in chunks while the answer is read (Kubo answers `block/put` block
 * by block, before the upload ends).
 *
 * Why not `fetch`: the Kubo RPC API is plain HTTP/1.1 on a local socket, and an ingest makes two
 * calls per pin. Each `fetch` cost ~70 µs of the JS thread here (a Request with a dependent
 * AbortSignal, a Response, a body stream, a node-compat timer), a third of a pin's CPU; a request
 * here is one write and, for a small answer, one read (docs/performance.md). Aborting a request
 * closes its connection, which is also how the daemon learns that the client went away.
 *
 * A body chunk returned by `read()` is a view into the connection's buffer: it is valid until the
 * next `read()`. `text()` and `bytes()` copy.
 *
 * @example
 * ```ts
 * const client = new Http1Client({ hostname: '127.0.0.1', port: 5001 })
 * const res = await client.request({ path: '/api/v0/id', signal })
 * console.log(res.status, JSON.parse(await res.text()))
 * client.close()
 * ```
 */

/** Where the server listens: a TCP host and port, or a unix socket path. */
export type Http1Target = { hostname: string; port: number } | { unixPath: string }

/** One request: a POST unless told otherwise (the Kubo RPC API takes nothing else). */
export interface Http1Request {
  /**
   * The method: POST by default. The IPFS proxy forwards its clients' other methods (GET, HEAD,
   * OPTIONS…) to Kubo unchanged.
   */
  method?: string
  /** More request headers, sent as given (the IPFS proxy forwards a client's headers). */
  headers?: Iterable<[string, string]>
  /** Path and query (`/api/v0/pin/ls?arg=…`), already escaped. */
  path: string
  /** Sent with its length, or streamed with chunked encoding while the answer is read. */
  body?: Uint8Array | ReadableStream<Uint8Array>
  contentType?: string
  /** Aborting it closes the connection; the request or read in progress rejects with its reason. */
  signal?: AbortSignal
}

/** Opens a connection (tests inject failures here). */
export type Dialer = (target: Http1Target) => Promise<Deno.Conn>

/** The server answered something that is not HTTP/1.x as this client reads it. */
export class Http1ProtocolError extends Error {
  override name = 'Http1ProtocolError'
}

/** Idle connections kept for reuse (the connector runs `concurrent_pins` calls at once, 10). */
const MAX_IDLE = 32
/** The answer's status line and headers together may not exceed this. */
const MAX_HEAD_BYTES = 64 * 1024
/** Nor may a chunk-size or trailer line. */
const MAX_LINE_BYTES = 8 * 1024
const READ_BYTES = 16 * 1024

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const CRLF = encoder.encode('\r\n')
const LAST_CHUNK = encoder.encode('0\r\n\r\n')

const dial: Dialer = (t) =>
  'unixPath' in t
    ? Deno.connect({ transport: 'unix', path: t.unixPath })
    : Deno.connect({ hostname: t.hostname, port: t.port })

/** A connection and its read buffer (unread bytes are `buf[start, end)`). */
class Connection {
  buf: Uint8Array
  start = 0
  end = 0
  /** Bytes of an answer were received on this connection during the current request. */
  answered = false
  closed = false

  constructor(readonly conn: Deno.Conn, readBytes = READ_BYTES) {
    this.buf = new Uint8Array(readBytes)
  }

  /** Reads more bytes into the buffer; false at the end of the stream. */
  async fill(limit = Infinity): Promise<boolean> {
    if (this.start === this.end) this.start = this.end = 0
    if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end)
        this.end -= this.start
        this.start = 0
      } else {
        if (this.buf.length >= limit) return true // the caller reports the overflow
        const next = new Uint8Array(Math.min(this.buf.length * 2, Math.max(limit, READ_BYTES)))
        next.set(this.buf)
        this.buf = next
      }
    }
    const n = await this.conn.read(this.buf.subarray(this.end))
    if (n === null) return false
    this.end += n
    this.answered = true
    return true
  }

  /** Index of the blank line that ends an answer's head in the unread bytes, or -1. */
  headEnd(): number {
    const b = this.buf
    for (let i = this.start; i + 3 < this.end; i++) {
      if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i
    }
    return -1
  }

  /** Index of the next CRLF in the unread bytes, or -1. */
  crlf(from = this.start): number {
    for (let i = from; i + 1 < this.end; i++) {
      if (this.buf[i] === 13 && this.buf[i + 1] === 10) return i
    }
    return -1
  }

  /** Reads up to the next CRLF (consumed) and returns the line before it. */
  async line(what: string): Promise<string> {
    let i: number
    while ((i = this.crlf()) < 0) {
      if (this.end - this.start > MAX_LINE_BYTES) {
        throw new Http1ProtocolError(`${what} longer than ${MAX_LINE_BYTES} bytes`)
      }
      if (!(await this.fill(MAX_LINE_BYTES * 2))) throw new Http1ProtocolError('unexpected EOF')
    }
    const s = decoder.decode(this.buf.subarray(this.start, i))
    this.start = i + 2
    return s
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.length;) off += await this.conn.write(bytes.subarray(off))
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    try {
      this.conn.close()
    } catch {
      // already closed
    }
  }
}

/** How the body of an answer ends. */
type Framing = { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'eof' }

/** An answer. Read its body to the end (or `cancel()` it) so the connection can be reused. */
export class Http1Response {
  /** Header names in lower case; repeated headers joined with ", ". */
  readonly headers: ReadonlyMap<string, string>
  /** Trailers of a chunked answer, once its body has been read to the end. */
  readonly trailers = new Map<string, string>()
  #c: Connection
  #framing: Framing
  /** Left in the current chunk; -1 between chunks. */
  #chunkLeft = -1
  #done = false
  #release: (reusable: boolean) => void
  #failure: () => unknown
  #signal?: AbortSignal

  constructor(
    readonly status: number,
    headers: Map<string, string>,
    c: Connection,
    framing: Framing,
    release: (reusable: boolean) => void,
    opts: {
      /** Why the request's body stream failed, if it did (the real cause of a broken read). */
      failure?: () => unknown
      /** The request's signal: once it aborted, reading rejects with its reason. */
      signal?: AbortSignal
    } = {},
  ) {
    this.headers = headers
    this.#c = c
    this.#framing = framing
    this.#release = release
    this.#failure = opts.failure ?? (() => undefined)
    this.#signal = opts.signal
    if (framing.kind === 'length' && framing.left === 0) this.#finish()
  }

  /** True once the body was read to its end or cancelled. */
  get done(): boolean {
    return this.#done
  }

  /**
   * The next piece of the body (a view valid until the next call), or null at its end. After the
   * request's signal aborted it rejects with the reason, even when the body had arrived whole.
   */
  async read(): Promise<Uint8Array | null> {
    if (this.#signal?.aborted) {
      this.#finish(false)
      throw this.#signal.reason
    }
    if (this.#done) return null
    const c = this.#c
    try {
      switch (this.#framing.kind) {
        case 'length': {
          const f = this.#framing
          if (c.start === c.end && !(await c.fill())) {
            throw new Http1ProtocolError('unexpected EOF')
          }
          const n = Math.min(f.left, c.end - c.start)
          const out = c.buf.subarray(c.start, c.start + n)
          c.start += n
          f.left -= n
          if (f.left === 0) this.#finish()
          return out
        }
        case 'eof': {
          if (c.start === c.end && !(await c.fill())) {
            this.#finish(false)
            return null
          }
          const out = c.buf.subarray(c.start, c.end)
          c.start = c.end
          return out
        }
        case 'chunked':
          return await this.#readChunked()
      }
    } catch (err) {
      this.#finish(false)
      if (this.#signal?.aborted) throw this.#signal.reason
      throw this.#failure() ?? err
    }
  }

  async #readChunked(): Promise<Uint8Array | null> {
    const c = this.#c
    if (this.#chunkLeft <= 0) {
      if (this.#chunkLeft === 0) {
        // The CRLF that ends a chunk's data.
        if ((await c.line('chunk end')) !== '') {
          throw new Http1ProtocolError('malformed chunked encoding')
        }
      }
      const sizeLine = await c.line('chunk size line')
      const hex = sizeLine.split(';', 1)[0].trim()
      if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) {
        throw new Http1ProtocolError(`bad chunk size ${JSON.stringify(hex)}`)
      }
      const size = parseInt(hex, 16)
      if (size === 0) {
        await this.#readTrailers()
        this.#finish()
        return null
      }
      this.#chunkLeft = size
    }
    if (c.start === c.end && !(await c.fill())) throw new Http1ProtocolError('unexpected EOF')
    const n = Math.min(this.#chunkLeft, c.end - c.start)
    const out = c.buf.subarray(c.start, c.start + n)
    c.start += n
    this.#chunkLeft -= n
    return out
  }

  async #readTrailers(): Promise<void> {
    let bytes = 0
    for (;;) {
      const line = await this.#c.line('trailer line')
      if (line === '') return
      bytes += line.length
      if (bytes > MAX_HEAD_BYTES) throw new Http1ProtocolError('trailers too large')
      addHeader(this.trailers, line)
    }
  }

  /** The whole body, copied (into one buffer of the announced length when there is one). */
  async bytes(): Promise<Uint8Array> {
    let out = new Uint8Array(this.#framing.kind === 'length' ? this.#framing.left : 0)
    let n = 0
    for (let b; (b = await this.read()) !== null;) {
      if (n + b.length > out.length) {
        const grown = new Uint8Array(Math.max(out.length * 2, n + b.length))
        grown.set(out.subarray(0, n))
        out = grown
      }
      out.set(b, n)
      n += b.length
    }
    return n === out.length ? out : out.subarray(0, n)
  }

  /** The whole body as UTF-8 text. */
  async text(): Promise<string> {
    let s = ''
    const d = new TextDecoder()
    for (let b; (b = await this.read()) !== null;) s += d.decode(b, { stream: true })
    return s + d.decode()
  }

  /** Stops reading: the connection is closed (the server sees the client go away). Idempotent. */
  cancel(): void {
    this.#finish(false)
  }

  #finish(complete = true): void {
    if (this.#done) return
    this.#done = true
    // Reusable only at a clean end with nothing unread: there is no pipelining.
    this.#release(complete && this.#framing.kind !== 'eof' && this.#c.start === this.#c.end)
  }
}

function addHeader(into: Map<string, string>, line: string): void {
  const i = line.indexOf(':')
  if (i <= 0) throw new Http1ProtocolError(`malformed header line ${JSON.stringify(line)}`)
  const name = line.slice(0, i).trim().toLowerCase()
  const value = line.slice(i + 1).trim()
  const prev = into.get(name)
  into.set(name, prev === undefined ? value : `${prev}, ${value}`)
}

/** A pool of keep-alive connections to one server. */
export class Http1Client {
  readonly #target: Http1Target
  readonly #host: string
  readonly #dial: Dialer
  #idle: Connection[] = []
  readonly #open = new Set<Connection>()
  #closed = false

  readonly #readBytes: number

  /**
   * `readBytes`: each connection's read buffer (16 KiB). The IPFS proxy, which passes bodies of
   * gigabytes through, asks for more.
   */
  constructor(target: Http1Target, opts: { dial?: Dialer; readBytes?: number } = {}) {
    this.#readBytes = opts.readBytes ?? READ_BYTES
    this.#target = target
    this.#dial = opts.dial ?? dial
    this.#host = 'unixPath' in target
      ? 'unix'
      : target.hostname.includes(':')
      ? `[${target.hostname}]:${target.port}`
      : `${target.hostname}:${target.port}`
  }

  /** Connections open (idle and busy). */
  get openConnections(): number {
    return this.#open.size
  }

  /**
   * Sends the request and resolves with the answer's status and headers; the body is read from
   * the response. A request that fails on a reused connection before any answer arrived (the
   * server closed it while idle) is sent again once on a new one, unless its body was a stream.
   */
  async request(req: Http1Request): Promise<Http1Response> {
    if (this.#closed) throw new Deno.errors.BadResource('HTTP client is closed')
    req.signal?.throwIfAborted()
    for (;;) {
      const idle = this.#idle.pop()
      const c = idle ?? await this.#connect(req.signal)
      try {
        return await this.#exchange(c, req)
      } catch (err) {
        this.#drop(c)
        const retry = idle !== undefined && !c.answered && !(req.body instanceof ReadableStream) &&
          !req.signal?.aborted
        if (!retry) throw err
        // The server dropped its idle connections (a restart?): do not try the others.
        for (const old of this.#idle.splice(0)) this.#drop(old)
      }
    }
  }

  /** Closes every connection, idle or busy. Idempotent. */
  close(): void {
    this.#closed = true
    this.#idle = []
    for (const c of this.#open) c.close()
    this.#open.clear()
  }

  async #connect(signal?: AbortSignal): Promise<Connection> {
    const dialing = this.#dial(this.#target)
    let conn: Deno.Conn
    if (signal) {
      let onAbort: (() => void) | undefined
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason)
        signal.addEventListener('abort', onAbort, { once: true })
      })
      try {
        conn = await Promise.race([dialing, aborted])
      } catch (err) {
        dialing.then((c) => c.close(), () => {})
        throw err
      } finally {
        signal.removeEventListener('abort', onAbort!)
      }
    } else {
      conn = await dialing
    }
    // Requests and chunks are written whole: Nagle's delay would only hold back streamed bodies.
    if ('setNoDelay' in conn) (conn as Deno.TcpConn).setNoDelay(true)
    const c = new Connection(conn, this.#readBytes)
    if (this.#closed) {
      c.close()
      throw new Deno.errors.BadResource('HTTP client is closed')
    }
    this.#open.add(c)
    return c
  }

  #drop(c: Connection): void {
    c.close()
    this.#open.delete(c)
  }

  async #exchange(c: Connection, req: Http1Request): Promise<Http1Response> {
    c.answered = false
    const signal = req.signal
    const onAbort = () => c.close()
    signal?.addEventListener('abort', onAbort)
    let writing: Promise<void> | undefined
    let writeError: unknown
    const release = (reusable: boolean) => {
      signal?.removeEventListener('abort', onAbort)
      // A streamed body still being sent: the connection cannot carry another request.
      if (reusable && !this.#closed && !c.closed && writing === undefined) {
        if (this.#idle.length < MAX_IDLE) return void this.#idle.push(c)
      }
      this.#drop(c)
    }
    try {
      const body = req.body
      const method = req.method ?? 'POST'
      let head = `${method} ${req.path} HTTP/1.1\r\nHost: ${this.#host}\r\n`
      if (req.contentType) head += `Content-Type: ${req.contentType}\r\n`
      if (req.headers) head += headerLines(req.headers)
      if (body instanceof ReadableStream) {
        await c.write(encoder.encode(head + 'Transfer-Encoding: chunked\r\n\r\n'))
        writing = this.#stream(c, body).then(
          () => {
            writing = undefined
          },
          (err) => {
            writeError = err
            c.close() // the answer cannot complete; its read fails and reports writeError
          },
        )
      } else {
        head += `Content-Length: ${body?.length ?? 0}\r\n\r\n`
        if (body?.length) {
          const h = encoder.encode(head)
          const all = new Uint8Array(h.length + body.length)
          all.set(h)
          all.set(body, h.length)
          await c.write(all)
        } else {
          await c.write(encoder.encode(head))
        }
      }
      return await this.#readHead(c, release, () => writeError, signal, method === 'HEAD')
    } catch (err) {
      signal?.removeEventListener('abort', onAbort)
      if (signal?.aborted) throw signal.reason
      if (writeError !== undefined) throw writeError
      throw err
    }
  }

  /** Sends a body stream with chunked encoding. */
  async #stream(c: Connection, body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader()
    try {
      for (;;) {
        const r = await reader.read()
        if (r.done) break
        const b = r.value
        if (b.length === 0) continue
        const size = encoder.encode(b.length.toString(16) + '\r\n')
        const frame = new Uint8Array(size.length + b.length + 2)
        frame.set(size)
        frame.set(b, size.length)
        frame.set(CRLF, size.length + b.length)
        await c.write(frame)
      }
      await c.write(LAST_CHUNK)
    } catch (err) {
      await reader.cancel(err).catch(() => {})
      throw err
    }
  }

  async #readHead(
    c: Connection,
    release: (reusable: boolean) => void,
    failure: () => unknown,
    signal?: AbortSignal,
    head = false,
  ): Promise<Http1Response> {
    for (;;) {
      let end: number
      while ((end = c.headEnd()) < 0) {
        if (c.end - c.start > MAX_HEAD_BYTES) {
          throw new Http1ProtocolError(`answer head longer than ${MAX_HEAD_BYTES} bytes`)
        }
        if (!(await c.fill(MAX_HEAD_BYTES * 2))) {
          throw c.answered
            ? new Http1ProtocolError('unexpected EOF')
            : new Deno.errors.ConnectionReset('the server closed the connection')
        }
      }
      const lines = decoder.decode(c.buf.subarray(c.start, end)).split('\r\n')
      c.start = end + 4
      const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0])
      if (!m) throw new Http1ProtocolError(`malformed status line ${JSON.stringify(lines[0])}`)
      const status = Number(m[2])
      const headers = new Map<string, string>()
      for (let i = 1; i < lines.length; i++) addHeader(headers, lines[i])
      if (status >= 100 && status < 200) continue // 100 Continue and other interim answers
      const connection = headers.get('connection') ?? ''
      const keepAlive = m[1] === '1'
        ? !/\bclose\b/i.test(connection)
        : /\bkeep-alive\b/i.test(connection)
      const rel = (reusable: boolean) => release(reusable && keepAlive)
      const framing: Framing = head ? { kind: 'length', left: 0 } : framingOf(status, headers)
      return new Http1Response(status, headers, c, framing, rel, {
        failure,
        signal,
      })
    }
  }
}

/** `Name: value` lines; a name or value that could split the request head is refused. */
function headerLines(headers: Iterable<[string, string]>): string {
  let out = ''
  for (const [k, v] of headers) {
    if (/[\r\n:]/.test(k) || /[\r\n]/.test(v)) {
      throw new TypeError(`invalid request header ${JSON.stringify(k)}`)
    }
    out += `${k}: ${v}\r\n`
  }
  return out
}

function framingOf(status: number, headers: Map<string, string>): Framing {
  if (status === 204 || status === 304) return { kind: 'length', left: 0 }
  const te = headers.get('transfer-encoding')
  if (te !== undefined) {
    if (!/\bchunked\s*$/i.test(te)) {
      throw new Http1ProtocolError(`unsupported Transfer-Encoding ${JSON.stringify(te)}`)
    }
    return { kind: 'chunked' }
  }
  const cl = headers.get('content-length')
  if (cl !== undefined) {
    if (!/^\d{1,15}$/.test(cl)) throw new Http1ProtocolError(`bad Content-Length ${cl}`)
    return { kind: 'length', left: Number(cl) }
  }
  return { kind: 'eof' }
}
