/**
 * Single-peer consensus without Raft: operations are group-committed straight into the state.
 * It exists so the single-peer cluster and its apply path (state write, then tracker hooks) work
 * before the Raft component lands; Raft replaces it behind the same Consensus interface.
 *
 * @example
 * ```ts
 * const consensus = singlePeerConsensus({ peerId, state, hooks })
 * await consensus.logPin(pin)
 * ```
 */
import type { ApplyHooks, Consensus, LogOp } from '../../components.ts'
import type { PinState } from '../../state/kv_state.ts'
import { groupCommit } from '../../util/group_commit.ts'
import { ShutdownError } from '../../errors.ts'

/** Dependencies of the single-peer consensus. */
export interface SinglePeerConsensusDeps {
  peerId: string
  state: PinState
  hooks: ApplyHooks
}

/** Builds the single-peer consensus. */
export function singlePeerConsensus(deps: SinglePeerConsensusDeps): Consensus {
  const { state, hooks } = deps
  let stopped = false
  let index = 0
  const submit = groupCommit<LogOp>(async (ops) => {
    index = index || await state.appliedIndex()
    index += ops.length
    await state.apply(ops, index)
    for (const op of ops) {
      if (op.type === 'pin') hooks.onPin(op.pin)
      else hooks.onUnpin(op.pin)
    }
  })
  const log = (op: LogOp) => {
    if (stopped) return Promise.reject(new ShutdownError('consensus is shut down'))
    return submit(op)
  }
  return {
    ready: () => Promise.resolve(),
    logPin: (pin) => log({ type: 'pin', pin }),
    logUnpin: (pin) => log({ type: 'unpin', pin }),
    addPeer: () => Promise.reject(new Error('single-peer consensus cannot add peers')),
    rmPeer: () => Promise.reject(new Error('cannot remove ourselves from a 1-peer cluster')),
    state: () => state,
    peers: () => Promise.resolve([deps.peerId]),
    leader: () => Promise.resolve(deps.peerId),
    isTrustedPeer: (id) => id === deps.peerId,
    stop() {
      stopped = true
      return Promise.resolve()
    },
  }
}
