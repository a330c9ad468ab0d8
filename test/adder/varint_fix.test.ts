/**
 * UnixFS sizes from 2 GiB to 4 GiB (src/adder/varint_fix.ts): the `filesize` and `blocksizes` of a
 * file node are protobuf varints, as Kubo writes them (checked against an independent encoder
 * here; unfixed, protons-runtime 7.1.2 writes zeros for 2^31..2^32-1 and a 2 GiB file got a root CID
 * other than Kubo's), and they read back.
 */
import { deepEqual, equal } from 'node:assert/strict'
import { UnixFS } from 'ipfs-unixfs'
import { fixUint64Varints } from '../../src/adder/varint_fix.ts'

fixUint64Varints()

/** The protobuf varint of `n`, 7 bits a byte, low first. */
function varint(n: bigint): number[] {
  const out: number[] = []
  do {
    const low = Number(n & 0x7fn)
    n >>= 7n
    out.push(n > 0n ? low | 0x80 : low)
  } while (n > 0n)
  return out
}

Deno.test('UnixFS file sizes around 2^31 and 2^32 are written as Kubo writes them', () => {
  for (
    const size of [2n ** 31n - 1n, 2n ** 31n, 2n ** 31n + 12345n, 2n ** 32n - 1n, 2n ** 32n + 5n]
  ) {
    const node = new UnixFS({ type: 'file' })
    node.addBlockSize(size)
    const bytes = node.marshal()
    // type=file (08 02), filesize (18 …), blocksizes (20 …)
    deepEqual([...bytes], [0x08, 0x02, 0x18, ...varint(size), 0x20, ...varint(size)], String(size))
    equal(UnixFS.unmarshal(bytes).fileSize(), size)
  }
})
