/**
 * A peer's multiaddress as `init --peers` and `daemon --bootstrap` take it: a multiaddress whose
 * last part is `/p2p/<peer ID>` (`/ipfs/` is the old name), as go-libp2p's
 * `AddrInfoFromP2pAddr` accepts it.
 *
 * @example
 * ```ts
 * const p = parsePeerMultiaddr('/ip4/10.0.0.2/tcp/9096/ipfs/QmPSoSaPXpyunaBwHs1rZBKYSqRV4bLRk32VGYLuvdrypL')
 * // p.id: 'QmPSoS…', p.addr: '/ip4/10.0.0.2/tcp/9096/p2p/QmPSoS…', p.dialable: true
 * ```
 */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { errorMessage, ValidationError } from '../errors.ts'

/** A parsed peer multiaddress. */
export interface PeerMultiaddr {
  /** The peer ID, in its usual string form. */
  id: string
  /** The multiaddress in canonical form (`/p2p/`, the peer ID's usual form). */
  addr: string
  /** It has an address before `/p2p/<id>` (a bare `/p2p/<id>` names a peer without one). */
  dialable: boolean
}

/** Parses a peer multiaddress; `ValidationError` says what is wrong with it. */
export function parsePeerMultiaddr(s: string): PeerMultiaddr {
  if (s === '') throw new ValidationError('empty multiaddress')
  let comps
  try {
    comps = multiaddr(s).getComponents()
  } catch (err) {
    throw new ValidationError(`not a multiaddress (${errorMessage(err)})`)
  }
  const last = comps.at(-1)
  if (last?.name !== 'p2p' || !last.value) {
    throw new ValidationError('it does not end with /p2p/<peer ID>')
  }
  let id: string
  try {
    id = peerIdFromString(last.value).toString()
  } catch {
    throw new ValidationError(`"${last.value}" is not a peer ID`)
  }
  const head = comps.slice(0, -1).map((c) =>
    `/${c.name}${c.value !== undefined ? `/${c.value}` : ''}`
  )
  return { id, addr: `${head.join('')}/p2p/${id}`, dialable: head.length > 0 }
}
