import assert from 'node:assert/strict'
import { freePort } from '../../src/util/free_port.ts'

Deno.test('freePort: never the same port twice, each free, all below the ephemeral range', () => {
  const floor = Number(
    Deno.readTextFileSync('/proc/sys/net/ipv4/ip_local_port_range').split(/\s+/)[0],
  )
  const ports = Array.from({ length: 500 }, () => freePort())
  assert.equal(new Set(ports).size, ports.length)
  for (const p of ports) {
    assert.ok(p >= 10_000 && p < floor, `port ${p} (ephemeral range from ${floor})`)
  }
  // Free: a listener binds it.
  const l = Deno.listen({ hostname: '127.0.0.1', port: ports[0] })
  l.close()
})
