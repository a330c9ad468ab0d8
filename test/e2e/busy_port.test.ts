/**
 * A port already taken, as a user meets it: `service daemon` (started with the service task's
 * permissions) exits non-zero with exactly one line on stderr besides its INFO log lines, naming
 * the service.json key, the address and what to do — no stack trace, no libp2p advice about
 * `transportManager.faultTolerance` (no service.json key).
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { startKuboDouble } from '../support/kubo_double.ts'
import { initPeerConfig, runMain } from '../support/peer.ts'

/** Runs the daemon on `dir` while `port` is held by another listener. */
async function daemonWithPortTaken(dir: string, port: number) {
  const blocker = Deno.listen({ hostname: '127.0.0.1', port })
  try {
    return await runMain(['service', '--config', dir, 'daemon'], { timeoutMs: 60_000 })
  } finally {
    blocker.close()
  }
}

/** stderr without the daemon's ordinary INFO/DEBUG log lines. */
function problemLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) =>
    l !== '' && !/^\d{4}-\d\d-\d\dT\S+\t(INFO|DEBUG)\t/.test(l)
  )
}

async function portOf(dir: string, pick: (cfg: Record<string, never>) => string): Promise<number> {
  const cfg = JSON.parse(await Deno.readTextFile(join(dir, 'service.json')))
  return Number(/\/tcp\/(\d+)/.exec(pick(cfg))![1])
}

Deno.test('busy port: the REST API address in use is one line naming api.restapi.http_listen_multiaddress', async () => {
  const ipfs = await startKuboDouble({ instant: true })
  try {
    const dir = await initPeerConfig({ ipfs: ipfs.multiaddr })
    // deno-lint-ignore no-explicit-any
    const port = await portOf(dir, (c: any) => [c.api.restapi.http_listen_multiaddress].flat()[0])
    const r = await daemonWithPortTaken(dir, port)
    assert.notEqual(r.code, 0)
    assert.deepEqual(problemLines(r.stderr), [
      `error running: cannot listen on /ip4/127.0.0.1/tcp/${port} ` +
      '(api.restapi.http_listen_multiaddress): address already in use; stop the program using ' +
      'it or set another address in service.json',
    ])
    assert.equal(r.stdout, '')
    await Deno.remove(dir, { recursive: true })
  } finally {
    await ipfs.stop()
  }
})

Deno.test('busy port: the cluster libp2p address in use is one line naming cluster.listen_multiaddress', async () => {
  const ipfs = await startKuboDouble({ instant: true })
  try {
    const dir = await initPeerConfig({ ipfs: ipfs.multiaddr })
    // deno-lint-ignore no-explicit-any
    const port = await portOf(dir, (c: any) => c.cluster.listen_multiaddress[0])
    const r = await daemonWithPortTaken(dir, port)
    assert.notEqual(r.code, 0)
    assert.deepEqual(problemLines(r.stderr), [
      `error running: cannot listen on /ip4/127.0.0.1/tcp/${port} ` +
      '(cluster.listen_multiaddress): address already in use; stop the program using it or set ' +
      'another address in service.json',
    ])
    assert.doesNotMatch(r.stderr, /faultTolerance|\n\s+at /)
    await Deno.remove(dir, { recursive: true })
  } finally {
    await ipfs.stop()
  }
})
