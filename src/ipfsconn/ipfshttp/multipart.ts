/**
 * A `multipart/form-data` request body built on the fly from an async iterable of files, so
 * `block/put` can stream an /add of any size without holding its blocks in memory.
 *
 * @example
 * ```ts
 * const { body, contentType } = multipartStream(blocks, (b) => ({ name: b.cid, bytes: b.bytes }))
 * await fetch(url, { method: 'POST', body, headers: { 'content-type': contentType } })
 * ```
 */

/** One part of the body. */
export interface MultipartFile {
  /** Sent as the part's filename. */
  name: string
  bytes: Uint8Array
}

/** The streaming body and its Content-Type (with the boundary). */
export interface MultipartBody {
  body: ReadableStream<Uint8Array>
  contentType: string
}

const enc = new TextEncoder()

/**
 * Builds the body lazily: a part is produced only when the HTTP client pulls for more, so a slow
 * daemon slows the producer (backpressure) instead of buffering. `onItem` sees every item before
 * it is sent (the connector counts what it sent there). Errors of the source error the body.
 */
export function multipartStream<T>(
  items: AsyncIterable<T>,
  toFile: (item: T) => MultipartFile,
  onItem?: (item: T) => void,
): MultipartBody {
  const boundary = '----ipfscluster' + crypto.randomUUID().replaceAll('-', '')
  const it = items[Symbol.asyncIterator]()
  let finished = false
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (finished) return
      const next = await it.next()
      if (next.done) {
        finished = true
        controller.enqueue(enc.encode(`--${boundary}--\r\n`))
        controller.close()
        return
      }
      onItem?.(next.value)
      const f = toFile(next.value)
      const head = `--${boundary}\r\n` +
        `Content-Disposition: form-data; name="file"; filename="${escapeName(f.name)}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n'
      controller.enqueue(enc.encode(head))
      controller.enqueue(f.bytes)
      controller.enqueue(enc.encode('\r\n'))
    },
    async cancel() {
      finished = true
      await it.return?.()
    },
  }, { highWaterMark: 0 })
  return { body, contentType: `multipart/form-data; boundary=${boundary}` }
}

function escapeName(name: string): string {
  return encodeURIComponent(name)
}
