/**
 * The private network's cipher (npm `xsalsa20` under `@libp2p/pnet`) with src/net/xsalsa20_fix.ts:
 * several ciphers taking turns with inputs larger than the shared WebAssembly memory no longer
 * grow it without end (unfixed, three ciphers taking 3 MB each fail on the 8th round with
 * `Maximum memory size exceeded`), and the bytes are still XSalsa20's: equal to an independent
 * implementation (@noble/ciphers) for a stream cut into uneven pieces, across the 1 MiB slicing.
 */
import { deepEqual, equal } from 'node:assert/strict'
import xsalsa20 from 'xsalsa20'
import { xsalsa20 as nobleXsalsa20 } from '@noble/ciphers/salsa.js'
import { fixXsalsa20, XSALSA20_SLICE } from '../../src/net/xsalsa20_fix.ts'

fixXsalsa20()

Deno.test('xsalsa20 fix: ciphers taking turns with large inputs keep working', () => {
  const key = crypto.getRandomValues(new Uint8Array(32))
  const ciphers = [0, 1, 2].map(() => xsalsa20(crypto.getRandomValues(new Uint8Array(24)), key))
  const input = new Uint8Array(3_000_000)
  for (let round = 0; round < 40; round++) {
    for (const c of ciphers) equal(c.update(input).length, input.length)
  }
})

Deno.test('xsalsa20 fix: the keystream is XSalsa20’s, whatever the pieces', () => {
  const key = crypto.getRandomValues(new Uint8Array(32))
  const nonce = crypto.getRandomValues(new Uint8Array(24))
  const total = 3 * XSALSA20_SLICE + 1234
  const plain = new Uint8Array(total).map((_, i) => (i * 13) & 0xff)
  const expected = nobleXsalsa20(key, nonce, plain)
  const ours = xsalsa20(nonce, key)
  // Another cipher growing the memory between our pieces must not disturb our stream.
  const other = xsalsa20(crypto.getRandomValues(new Uint8Array(24)), key)
  const out = new Uint8Array(total)
  const pieces = [1, 63, 64, 65, 1000, XSALSA20_SLICE + 7, 2 * XSALSA20_SLICE]
  let off = 0
  for (let i = 0; off < total; i++) {
    const n = Math.min(pieces[i % pieces.length], total - off)
    out.set(ours.update(plain.subarray(off, off + n)), off)
    other.update(new Uint8Array(2_500_000 + i))
    off += n
  }
  deepEqual(out, expected)
})
