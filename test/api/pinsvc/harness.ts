/**
 * The Pinning Service API in-process over the fake cluster (test/support/fake_cluster.ts), with a
 * real index over a real (in-memory) Deno KV state: every pin and unpin of the fake is written to
 * the state and handed to the index as consensus's apply hooks would, so listings go through the
 * same index as on a peer.
 *
 * @example
 * ```ts
 * const h = await pinsvcHarness()
 * const res = await h.call('POST', '/pins', { cid })
 * await h.close()
 * ```
 */
import { pinSvcApiSection } from '../../../src/api/pinsvc/config.ts'
import { type RequestIndex, requestIndex } from '../../../src/api/pinsvc/index.ts'
import { pinSvcApi } from '../../../src/api/pinsvc/server.ts'
import type { HttpApi } from '../../../src/api/common/http_api.ts'
import { kvState, type PinState } from '../../../src/state/kv_state.ts'
import type { Pin } from '../../../src/types/pin.ts'
import { type FakeCluster, fakeCluster } from '../../support/fake_cluster.ts'
import { type ManualClock, manualClock } from '../../support/manual_clock.ts'

/** An API over a fake cluster, a KV state and the index. */
export interface Harness {
  api: HttpApi
  cluster: FakeCluster
  index: RequestIndex
  state: PinState
  /** The clock of `created` and of the fake's timestamps; moves only when a test moves it. */
  clock: ManualClock
  /** Calls a route in-process; a non-string body is sent as JSON. */
  call(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Response>
  /**
   * Writes a pin to the fake and the state as the REST API would (no request record), and waits
   * until the index has it.
   */
  restPin(pin: Pin): Promise<void>
  close(): Promise<void>
}

/** Builds a harness; `config` overrides keys of `api.pinsvcapi` (JSON form). */
export async function pinsvcHarness(config: Record<string, unknown> = {}): Promise<Harness> {
  const clock = manualClock(Date.UTC(2026, 0, 2, 3, 4, 5))
  const kv = await Deno.openKv(':memory:')
  const state = kvState(kv)
  let applied = 0
  const index = requestIndex({ kv, state, appliedIndex: () => state.appliedIndex() })
  await index.open()
  const cluster = fakeCluster({ now: () => clock.now() })
  const apply = async (pin: Pin, type: 'pin' | 'unpin') => {
    await state.apply([{ type, pin }], ++applied)
    if (type === 'pin') index.onPin(pin)
    else index.onUnpin(pin)
  }
  const pin = cluster.pin.bind(cluster)
  const commitPin = cluster.commitPin.bind(cluster)
  const unpin = cluster.unpin.bind(cluster)
  cluster.pin = async (cid, opts, signal) => {
    const p = await pin(cid, opts, signal)
    await apply(p, 'pin')
    return p
  }
  cluster.commitPin = async (given, signal) => {
    const p = await commitPin(given, signal)
    await apply(p, 'pin')
    return p
  }
  cluster.unpin = async (cid, signal) => {
    const p = await unpin(cid, signal)
    await apply(p, 'unpin')
    return p
  }
  const api = pinSvcApi(
    pinSvcApiSection.load({ http_listen_multiaddress: ['/ip4/127.0.0.1/tcp/0'], ...config }),
    { cluster, index, configDir: Deno.cwd(), clock },
  )
  return {
    api,
    cluster,
    index,
    state,
    clock,
    call(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers }
      if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body)
      return api.handler(new Request(`http://127.0.0.1:9097${path}`, init))
    },
    async restPin(p) {
      cluster.pinset.set(p.cid, p)
      await apply(p, 'pin')
      await index.settled()
    },
    async close() {
      await api.stop()
      await index.stop()
      kv.close()
    },
  }
}
