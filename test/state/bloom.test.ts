import assert from 'node:assert/strict'
import { BloomFilter } from '../../src/state/bloom.ts'
import { kvState } from '../../src/state/kv_state.ts'
import { newPin } from '../../src/types/pin.ts'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const cidFor = async (i: number) =>
  CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(`bloom ${i}`))).toString()

Deno.test('bloom: never a false negative; about 1% false positives at capacity', async () => {
  const f = new BloomFilter(20_000)
  const keys = await Promise.all(Array.from({ length: 20_000 }, (_, i) => cidFor(i)))
  keys.forEach((k) => f.add(k))
  for (const k of keys) assert.ok(f.mayHave(k), k)
  let fp = 0
  for (let i = 20_000; i < 40_000; i++) if (f.mayHave(await cidFor(i))) fp++
  assert.ok(fp / 20_000 < 0.02, `false positive rate ${fp / 20_000}`)
  assert.equal(f.saturated, false)
  f.add('one more')
  assert.equal(f.saturated, true)
})

Deno.test('state: absent pins are answered without a KV read once the filter is loaded', async () => {
  const kv = await Deno.openKv(':memory:')
  let reads = 0
  const counting = new Proxy(kv, {
    get(target, prop) {
      if (prop === 'get') {
        return (...args: Parameters<Deno.Kv['get']>) => {
          reads++
          return target.get(...args)
        }
      }
      const v = Reflect.get(target, prop)
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
  const present = newPin(await cidFor(1))
  await kv.set(['pin', present.cid], new TextEncoder().encode(JSON.stringify(present)))
  const s = kvState(counting)
  try {
    const absent = await Promise.all(Array.from({ length: 100 }, (_, i) => cidFor(100 + i)))
    // Before the filter has loaded, an absent CID is read from KV.
    assert.equal(await s.has(await cidFor(99)), false)
    assert.equal(reads, 1, 'read from KV while the filter is not loaded')
    // Once it has loaded (no turn of the event loop in between), absent CIDs cost nothing.
    await s.loadFilter()
    reads = 0
    for (const cid of absent) assert.equal(await s.has(cid), false)
    // (A false positive would cost its read; with two keys in a filter sized for a million and
    // these fixed CIDs there is none.)
    assert.equal(reads, 0, `${reads} KV reads for 100 absent pins`)
    assert.equal(await s.has(present.cid), true, 'a key stored before open is found')
    const added = newPin(await cidFor(2))
    await s.apply([{ type: 'pin', pin: added }])
    assert.equal(await s.has(added.cid), true, 'a key applied after open is found')
  } finally {
    s.close()
    kv.close()
  }
})
