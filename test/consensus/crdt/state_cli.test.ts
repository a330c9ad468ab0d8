/**
 * `ipfs-cluster-service state …` on a stopped CRDT peer (in-process): import writes the pins as
 * one batch delta of an offline replica (one head), export lists them, `state crdt info` and
 * `mark-dirty`/`mark-clean` read and set the store's flags, cleanup drops everything; on a Raft
 * peer the crdt tools refuse with the reference's words.
 */
import assert from 'node:assert/strict'
import { serviceMain } from '../../../cli/service/main.ts'
import type { CliIO } from '../../../cli/io.ts'

const PINS = [
  '{"replication_factor_min":-1,"replication_factor_max":-1,"name":"x","mode":"recursive","shard_size":0,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z","metadata":{"a":"b"},"pin_update":null,"origins":[],"cid":"Qmb6Q5bcdbSQYsyoCNiFHJwD8USsBqNf5iAnJZzAjY1hNL","type":"pin","allocations":[],"max_depth":-1,"reference":null,"timestamp":"2026-11-25T12:36:18Z"}',
  '{"replication_factor_min":2,"replication_factor_max":3,"name":"d","mode":"direct","shard_size":0,"user_allocations":null,"expire_at":"2030-01-02T03:04:05Z","metadata":null,"pin_update":"QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG","origins":["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWNFxQJJfwv6vmh7A8NAnx9hT3fiS6VH4LFj2jdC6eBWZ7"],"cid":"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi","type":"pin","allocations":["12D3KooWH9GdGUb4pqZCSpSMnT78BSv7dUBMkcXur4F1o4tFf2EQ"],"max_depth":0,"reference":null,"timestamp":"2026-11-25T12:36:18Z"}',
]

async function svc(
  args: string[],
  stdin = '',
): Promise<{ code: number; out: string; err: string }> {
  const r = { code: -1, out: '', err: '' }
  const io: CliIO = {
    stdout: (s) => void (r.out += s),
    stderr: (s) => void (r.err += s),
    env: { HOME: '/nonexistent' },
    stdin: () => new Blob([stdin]).stream(),
    confirm: () => Promise.resolve(true),
    prompt: () => Promise.resolve(''),
  }
  r.code = await serviceMain(args, io)
  return r
}

Deno.test('state import/export/cleanup and state crdt tools on a CRDT peer', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'crdt-state-' })
  try {
    assert.equal((await svc(['-c', dir, 'init', '--consensus', 'crdt'])).code, 0)
    const imp = await svc(['-c', dir, 'state', 'import', '-f'], PINS.join('\n') + '\n')
    assert.equal(imp.code, 0, imp.err)
    const exp = await svc(['-c', dir, 'state', 'export'])
    assert.equal(exp.code, 0, exp.err)
    // Byte for byte what Go exported, after a round trip through the CRDT's protobuf.
    assert.equal(exp.out, PINS.join('\n') + '\n')

    const info = await svc(['-c', dir, 'state', 'crdt', 'info'])
    assert.equal(info.code, 0, info.err)
    assert.match(
      info.out,
      /^Number of heads: 1\. Current max-height: 1\. Dirty: false\nHeads: \[bafy\w+\]\n$/,
    )
    assert.equal(
      (await svc(['-c', dir, 'state', 'crdt', 'mark-dirty'])).out,
      "Datastore marked 'dirty'\n",
    )
    assert.match((await svc(['-c', dir, 'state', 'crdt', 'info'])).out, /Dirty: true/)
    assert.equal(
      (await svc(['-c', dir, 'state', 'crdt', 'mark-clean'])).out,
      "Datastore marked 'clean'\n",
    )
    assert.match((await svc(['-c', dir, 'state', 'crdt', 'info'])).out, /Dirty: false/)
    const dot = await svc(['-c', dir, 'state', 'crdt', 'dot'])
    assert.equal(dot.code, 1)
    assert.match(dot.err, /^error generating graph: .*not implemented here\n$/)

    // A second import replaces the first: still one delta, one head, one pin.
    assert.equal((await svc(['-c', dir, 'state', 'import', '-f'], PINS[0] + '\n')).code, 0)
    assert.equal((await svc(['-c', dir, 'state', 'export'])).out, PINS[0] + '\n')
    assert.match(
      (await svc(['-c', dir, 'state', 'crdt', 'info'])).out,
      /^Number of heads: 1\. Current max-height: 1\./,
    )

    const clean = await svc(['-c', dir, 'state', 'cleanup', '-f'])
    assert.equal(clean.code, 0, clean.err)
    assert.equal((await svc(['-c', dir, 'state', 'export'])).out, '')
    assert.match(
      (await svc(['-c', dir, 'state', 'crdt', 'info'])).out,
      /^Number of heads: 0\. Current max-height: 0\. Dirty: false/,
    )
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('state crdt on a Raft peer: refused with the reference’s words', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'raft-state-' })
  try {
    assert.equal((await svc(['-c', dir, 'init'])).code, 0)
    const r = await svc(['-c', dir, 'state', 'crdt', 'info'])
    assert.equal(r.code, 1)
    assert.equal(
      r.err,
      'error : crdt subcommands can only be run on peers initialized with crdt consensus\n',
    )
    const bad = await svc(['-c', dir, 'state', 'crdt', 'nope'])
    assert.equal(bad.code, 3)
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})
