/**
 * Shared bits of the ipfshttp tests: a config pointing at a daemon, and test CIDs/blocks.
 */
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { type IPFSHttpConfig, ipfsHttpSection } from '../../../src/ipfsconn/ipfshttp/config.ts'

/** The section's defaults with the daemon address and any overrides. */
export function testConfig(
  maddr: string,
  over: Partial<IPFSHttpConfig> = {},
): IPFSHttpConfig {
  return { ...ipfsHttpSection.defaults(), node_multiaddress: maddr, ...over }
}

/** A raw block (CIDv1, sha2-256) for the given text. */
export function rawBlock(text: string): { cid: string; bytes: Uint8Array } {
  const bytes = new TextEncoder().encode(text)
  return { cid: CID.createV1(0x55, sha256.digest(bytes) as never).toString(), bytes }
}

/** A CIDv0 string for some text (content that no daemon has). */
export function cidV0(text: string): string {
  return CID.createV0(sha256.digest(new TextEncoder().encode(text)) as never).toString()
}

export { waitFor } from '../../support/wait.ts'
