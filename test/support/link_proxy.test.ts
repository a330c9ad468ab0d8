import assert from 'node:assert/strict'
import { LinkProxies } from './link_proxy.ts'

/** An echo server on 127.0.0.1; `close()` stops it and every connection. */
function echoServer(): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const conns = new Set<Deno.TcpConn>()
  const loop = (async () => {
    try {
      for await (const c of listener) {
        conns.add(c)
        c.readable.pipeTo(c.writable).catch(() => {}).finally(() => conns.delete(c))
      }
    } catch {
      // closed
    }
  })()
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close()
      for (const c of conns) {
        try {
          c.close()
        } catch { /* closed */ }
      }
      await loop
    },
  }
}

/** Sends `text` and reads it back; undefined when the connection ends first. */
async function roundTrip(conn: Deno.TcpConn, text: string): Promise<string | undefined> {
  await conn.write(new TextEncoder().encode(text))
  const buf = new Uint8Array(text.length)
  let got = 0
  while (got < buf.length) {
    const n = await conn.read(buf.subarray(got)).catch(() => null)
    if (n === null) return undefined
    got += n
  }
  return new TextDecoder().decode(buf)
}

async function dial(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: '127.0.0.1', port })
}

Deno.test('link proxy: carries bytes both ways until cut, refuses while cut, carries again once healed', async () => {
  const echo = echoServer()
  const links = new LinkProxies()
  try {
    const port = links.open('A', 'B', echo.port)
    assert.equal(links.open('A', 'B', echo.port), port, 'opening the same link twice is one link')
    const c1 = await dial(port)
    assert.equal(await roundTrip(c1, 'hello'), 'hello')
    assert.equal(links.connections('A', 'B'), 2)

    // A cut of B–A (either order) closes the open connection of A>B.
    links.cut('B', 'A')
    assert.ok(links.isCut('A', 'B'))
    assert.equal(await roundTrip(c1, 'lost'), undefined)
    c1.close()
    const c2 = await dial(port) // the listener accepts, then closes at once
    assert.equal(await roundTrip(c2, 'refused'), undefined)
    c2.close()
    assert.equal(links.connections('A', 'B'), 0)

    links.heal('A', 'B')
    const c3 = await dial(port)
    assert.equal(await roundTrip(c3, 'again'), 'again')
    c3.close()
  } finally {
    await links.close()
    await echo.close()
  }
})

Deno.test('link proxy: isolate cuts a minority off the rest and leaves the links inside each side', async () => {
  const echo = echoServer()
  const links = new LinkProxies()
  const all = ['A', 'B', 'C', 'D', 'E']
  try {
    for (const a of all) for (const b of all) if (a !== b) links.open(a, b, echo.port)
    links.isolate(['D', 'E'], all)
    for (const a of all) {
      for (const b of all) {
        if (a === b) continue
        const across = ['D', 'E'].includes(a) !== ['D', 'E'].includes(b)
        assert.equal(links.isCut(a, b), across, `${a}>${b}`)
        const c = await dial(links.port(a, b))
        assert.equal(await roundTrip(c, 'x'), across ? undefined : 'x', `${a}>${b}`)
        c.close()
      }
    }
    links.healAll()
    const c = await dial(links.port('A', 'E'))
    assert.equal(await roundTrip(c, 'healed'), 'healed')
    c.close()
  } finally {
    await links.close()
    await echo.close()
  }
})

Deno.test('link proxy: a target that is down closes the inbound connection', async () => {
  const echo = echoServer()
  const target = echo.port
  await echo.close()
  const links = new LinkProxies()
  try {
    const c = await dial(links.open('A', 'B', target))
    assert.equal(await roundTrip(c, 'x'), undefined)
    c.close()
  } finally {
    await links.close()
  }
})
