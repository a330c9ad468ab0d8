/**
 * The Cluster itself (src/cluster.ts), rule by rule against IPFS Cluster 1.1.6's cluster.go:
 * replication factors (defaults, validation order and words, pin everywhere), follower mode,
 * expire_at (in the past at pin time, expiry by StateSync), re-pins of an existing CID, pin
 * updates, unpin by pin type, path resolution, the size limit, and the loops (ping, StateSync
 * timing, alerts). Consensus, tracker, IPFS and monitor are in-process doubles; the pinset is
 * the real Deno KV state; time is a manual clock.
 */
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { type AllocationRequest, Cluster } from '../src/cluster.ts'
import { closestChecker } from '../src/cluster/distance.ts'
import { allocationFunction } from '../src/allocator/allocate.ts'
import { balancedAllocator } from '../src/allocator/balanced.ts'
import { type ClusterConfig, clusterSection } from '../src/cluster/config.ts'
import type { Consensus, Informer, PeerMonitor, PinTracker } from '../src/components.ts'
import { ClusterError, NotFoundError, PIN_NOT_FOUND, ValidationError } from '../src/errors.ts'
import { kvState, MAX_PIN_BYTES, type PinState } from '../src/state/kv_state.ts'
import {
  type Alert,
  defaultPinOptions,
  formatTime,
  type Metric,
  newMetric,
  newPin,
  type Pin,
  PIN_TYPE_BITS,
  type PinInfo,
  type PinOptions,
  ZERO_TIME,
} from '../src/types/mod.ts'
import type { Logger } from '../src/util/log.ts'
import { rpcHandlers } from '../src/rpc/handlers.ts'
import { fakeIpfs } from './support/fake_ipfs.ts'
import { RpcMesh } from './support/rpc_mesh.ts'
import { type ManualClock, manualClock, turn } from './support/manual_clock.ts'
import { alertQueue } from './support/alert_queue.ts'
import { waitFor } from './support/wait.ts'

const SELF = '12D3KooWD9yGCdZAvQJzAGyiFHbqu1GpDeovwoDuQ7QKW8k4Yd8N'
const OTHER = '12D3KooWPmATeL9oHBkWBLcM8tjJCPGfQDpyNm1SjxbpjKejS86U'
const FOLLOWER_ERROR =
  'this peer is configured to be in follower mode. Write operations are disabled'

async function cidOf(tag: string | number): Promise<string> {
  const mh = await sha256.digest(new TextEncoder().encode(`cluster test ${tag}`))
  return CID.createV1(0x55, mh).toString()
}

const opts = (o: Partial<PinOptions> = {}): PinOptions => ({ ...defaultPinOptions(), ...o })

/** Consensus that applies every operation to the real KV state at once, and records it. */
function fakeConsensus(state: PinState) {
  const log: { op: 'pin' | 'unpin'; pin: Pin }[] = []
  const consensus: Consensus & { log: typeof log } = {
    log,
    ready: () => Promise.resolve(),
    async logPin(pin) {
      log.push({ op: 'pin', pin: structuredClone(pin) })
      await state.apply([{ type: 'pin', pin }])
    },
    async logUnpin(pin) {
      log.push({ op: 'unpin', pin: structuredClone(pin) })
      await state.apply([{ type: 'unpin', pin }])
    },
    addPeer: () => Promise.resolve(),
    rmPeer: () => Promise.resolve(),
    state: () => state,
    readBarrier: () => Promise.resolve(0),
    peers: () => Promise.resolve([SELF]),
    leader: () => Promise.resolve(SELF),
    isTrustedPeer: () => true,
    stop: () => Promise.resolve(),
  }
  return consensus
}

/** A tracker that only says it started (the Cluster's pin rules never ask it anything). */
function fakeTracker(): PinTracker & { started: number } {
  const none = (): never => {
    throw new Error('not used by these tests')
  }
  return {
    started: 0,
    start() {
      this.started++
      return Promise.resolve()
    },
    track: () => Promise.resolve(),
    untrack: () => Promise.resolve(),
    status: (): Promise<PinInfo> => none(),
    statusAll: () => none(),
    recover: (): Promise<PinInfo> => none(),
    recoverAll: () => none(),
    resync: () => {},
    pinQueueSize: () => 0,
    stop: () => Promise.resolve(),
  }
}

/** A monitor that records published metrics and hands out the alerts a test raises. */
function fakeMonitor() {
  const published: Metric[] = []
  const q = alertQueue()
  const monitor: PeerMonitor & {
    published: Metric[]
    /** Names whose publishing fails. */
    failing: Set<string>
    raise(a: Alert): void
  } = {
    published,
    failing: new Set(),
    raise: q.raise,
    publishMetric(m) {
      if (monitor.failing.has(m.name)) return Promise.reject(new Error(`cannot send ${m.name}`))
      published.push(m)
      return Promise.resolve()
    },
    latestMetrics: () => [],
    metricNames: () => [],
    alerts: q.alerts,
    stop: () => Promise.resolve(),
  }
  return monitor
}

interface Setup {
  cluster: Cluster
  clock: ReturnType<typeof manualClock>
  state: PinState
  consensus: ReturnType<typeof fakeConsensus>
  ipfs: ReturnType<typeof fakeIpfs>
  tracker: ReturnType<typeof fakeTracker>
  monitor: ReturnType<typeof fakeMonitor>
  mesh: RpcMesh
  /** What the allocator was asked, in order. */
  allocations: AllocationRequest[]
  /** Paths given to IPFS resolve. */
  resolved: string[]
  logs: string[]
  close(): Promise<void>
}

async function setup(
  config: Partial<ClusterConfig> = {},
  o: {
    /** false: none; a function: this one; default: a fake that records what it is asked. */
    allocate?: false | ((req: AllocationRequest) => Promise<string[]>)
    informers?: (clock: ManualClock) => Informer[]
  } = {},
): Promise<Setup> {
  const kv = await Deno.openKv(':memory:')
  const state = kvState(kv)
  const clock = manualClock(Date.UTC(2026, 5, 1, 12))
  const consensus = fakeConsensus(state)
  const ipfs = fakeIpfs({ id: OTHER })
  const resolved: string[] = []
  const resolve = ipfs.resolve
  ipfs.resolve = (path, signal) => (resolved.push(path), resolve(path, signal))
  const tracker = fakeTracker()
  const monitor = fakeMonitor()
  const allocations: AllocationRequest[] = []
  const logs: string[] = []
  const at = (lvl: string) => (msg: string) => void logs.push(`${lvl} ${msg}`)
  const log: Logger = { debug() {}, info: at('info'), warn: at('warn'), error: at('error') }
  const mesh = new RpcMesh(clock)
  const cluster = new Cluster({
    config: { ...clusterSection.defaults(), peername: 'peer0', ...config },
    peerId: SELF,
    consensus,
    tracker,
    ipfs,
    monitor,
    informers: o.informers?.(clock) ?? [],
    rpc: mesh.client(SELF),
    allocate: o.allocate === false
      ? undefined
      : typeof o.allocate === 'function'
      ? o.allocate
      : (req) => {
        allocations.push(structuredClone(req))
        return Promise.resolve([SELF, OTHER].slice(0, Math.max(1, req.rfMax)))
      },
    clock,
    log,
  })
  mesh.serve(
    SELF,
    rpcHandlers({ cluster, tracker, ipfs, consensus, connectedPeers: () => [] }),
    () => true,
  )
  return {
    cluster,
    clock,
    state,
    consensus,
    ipfs,
    tracker,
    monitor,
    mesh,
    allocations,
    resolved,
    logs,
    async close() {
      await cluster.stop()
      state.close()
      kv.close()
    },
  }
}

/** Runs `fn` with a fresh setup and closes it. */
async function withCluster(
  config: Partial<ClusterConfig>,
  fn: (s: Setup) => Promise<void>,
  o: Parameters<typeof setup>[1] = {},
): Promise<void> {
  const s = await setup(config, o)
  try {
    await fn(s)
  } finally {
    await s.close()
  }
}

/** Asserts `p` rejects with exactly this class and message. */
async function rejectsWith(
  p: Promise<unknown>,
  cls: typeof ClusterError,
  message: string,
): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof cls, `${e?.name}: ${e?.message}`)
    assert.equal(e.message, message)
    return true
  })
}

// ---- replication factors ----

Deno.test('pin: replication factors of 0 take the configured ones, then go to the allocator', async () => {
  await withCluster({ replication_factor_min: 2, replication_factor_max: 3 }, async (s) => {
    const cid = await cidOf(1)
    const pin = await s.cluster.pin(cid, opts({ user_allocations: [OTHER] }))
    assert.equal(pin.replication_factor_min, 2)
    assert.equal(pin.replication_factor_max, 3)
    assert.deepEqual(s.allocations, [{
      cid,
      rfMin: 2,
      rfMax: 3,
      current: [],
      userAllocations: [OTHER],
      blacklist: [],
    }])
    assert.deepEqual(pin.allocations, [SELF, OTHER])
    assert.deepEqual(s.consensus.log.map((l) => l.op), ['pin'])
    assert.deepEqual((await s.state.get(cid))?.allocations, [SELF, OTHER])

    // Explicit factors win over the configured ones.
    const pin2 = await s.cluster.pin(
      await cidOf(2),
      opts({ replication_factor_min: 1, replication_factor_max: 1 }),
    )
    assert.equal(pin2.replication_factor_min, 1)
    assert.deepEqual(pin2.allocations, [SELF])
  })
})

Deno.test('pin: -1/-1 pins everywhere: no allocations and no allocator call', async () => {
  await withCluster({}, async (s) => {
    // The default configuration is -1/-1.
    const pin = await s.cluster.pin(await cidOf(1), opts())
    assert.equal(pin.replication_factor_min, -1)
    assert.equal(pin.replication_factor_max, -1)
    assert.deepEqual(pin.allocations, [])
    assert.deepEqual(s.allocations, [])
  })
})

Deno.test('pin: invalid replication factors are refused in the reference order and words', async () => {
  await withCluster({ replication_factor_min: 2, replication_factor_max: 3 }, async (s) => {
    const cases: [number, number, string][] = [
      [5, 2, 'cluster.replication_factor_min is larger than max'],
      // min > max is checked before the -1 pairing, as cluster_config.go does.
      [3, -1, 'cluster.replication_factor_min is larger than max'],
      [-1, 3, 'cluster.replication_factor_min and max must be -1 when one of them is'],
      [-2, 3, 'cluster.replication_factor_min is wrong'],
      [-3, -2, 'cluster.replication_factor_min is wrong'],
      // 0 takes the configured value: 0/1 means 2/1.
      [0, 1, 'cluster.replication_factor_min is larger than max'],
    ]
    for (const [min, max, message] of cases) {
      await rejectsWith(
        s.cluster.pin(
          await cidOf(`${min}/${max}`),
          opts({ replication_factor_min: min, replication_factor_max: max }),
        ),
        ValidationError,
        message,
      )
    }
    assert.equal(s.consensus.log.length, 0, 'nothing was committed')
    assert.deepEqual(s.allocations, [], 'nothing was allocated')
  })
  // A configuration without factors (only reachable by building one by hand).
  await withCluster({ replication_factor_min: 0, replication_factor_max: 0 }, async (s) => {
    await rejectsWith(
      s.cluster.pin(await cidOf(1), opts()),
      ValidationError,
      'cluster.replication_factor_min and max must be set',
    )
  })
})

Deno.test('pin: without an allocator a replicated pin is allocated to this peer', async () => {
  await withCluster({ replication_factor_min: 1, replication_factor_max: 2 }, async (s) => {
    const pin = await s.cluster.pin(await cidOf(1), opts())
    assert.deepEqual(pin.allocations, [SELF])
  }, { allocate: false })
})

// ---- listing ----

Deno.test('pins: in CID order, by type; from a cursor only the pins after it (a KV list from its key)', async () => {
  await withCluster({}, async (s) => {
    const cids = (await Promise.all([0, 1, 2, 3, 4, 5].map(cidOf))).sort()
    for (const cid of cids) await s.state.apply([{ type: 'pin', pin: newPin(cid) }])
    await s.state.apply([{ type: 'pin', pin: { ...newPin(cids[4]), type: 'shard-pin' } }])
    const list = async (mask: number, after?: string) => {
      const out: string[] = []
      for await (const p of s.cluster.pins(mask, undefined, after)) out.push(p.cid)
      return out
    }
    assert.deepEqual(await list(0), cids)
    assert.deepEqual(await list(0, cids[2]), cids.slice(3))
    assert.deepEqual(await list(PIN_TYPE_BITS.pin, cids[2]), [cids[3], cids[5]])
    assert.deepEqual(await list(0, cids[5]), [])
    // A cursor that is no pin's CID starts at the next one.
    assert.deepEqual(await list(0, cids[1] + 'x'), cids.slice(2))
  })
})

// ---- follower mode ----

Deno.test('follower mode: every write is refused with the reference message; nothing is committed', async () => {
  await withCluster({ follower_mode: true }, async (s) => {
    const cid = await cidOf(1)
    await s.state.apply([{ type: 'pin', pin: newPin(cid) }])
    const writes: [string, () => Promise<unknown>][] = [
      ['pin', () => s.cluster.pin(cid, opts())],
      ['pin update', async () => s.cluster.pin(await cidOf(2), opts({ pin_update: cid }))],
      ['pinPath', () => s.cluster.pinPath(`/ipfs/${cid}`, opts())],
      ['unpin', () => s.cluster.unpin(cid)],
      ['unpinPath', () => s.cluster.unpinPath(`/ipfs/${cid}`)],
    ]
    for (const [what, write] of writes) {
      await assert.rejects(write(), (e: Error) => {
        assert.ok(e instanceof ClusterError, `${what}: ${e}`)
        assert.equal(e.message, FOLLOWER_ERROR, what)
        return true
      })
    }
    assert.equal(s.consensus.log.length, 0)
    assert.ok(await s.state.has(cid), 'reads still work')
    assert.equal((await s.cluster.pinGet(cid)).cid, cid)
  })
})

Deno.test('follower mode: StateSync leaves expired pins alone and alerts are not recorded', async () => {
  await withCluster({ follower_mode: true }, async (s) => {
    const cid = await cidOf(1)
    const expired = newPin(cid, { expire_at: formatTime(s.clock.now() - 1000) })
    await s.state.apply([{ type: 'pin', pin: expired }])
    await s.cluster.stateSync()
    assert.ok(await s.state.has(cid))
    assert.equal(s.consensus.log.length, 0)

    await s.cluster.start()
    s.monitor.raise({ ...newMetric('ping', OTHER, '', 1000, s.clock.now()), triggered_at: '' })
    await s.clock.advance(0)
    assert.deepEqual(await s.cluster.alerts(), [])
  })
})

// ---- informers ----

/** An informer of one metric with this TTL; invalid when `valid` is false; throws when asked. */
function informer(
  clock: ManualClock,
  name: string,
  ttlMs: number,
  o: { valid?: boolean; throws?: () => boolean } = {},
): Informer {
  return {
    name: () => name,
    getMetrics() {
      if (o.throws?.()) return Promise.reject(new Error(`${name} broke`))
      return Promise.resolve([{
        ...newMetric(name, SELF, '1', ttlMs, clock.now()),
        valid: o.valid ?? true,
      }])
    },
    stop: () => Promise.resolve(),
  }
}

Deno.test('informers: each published at once, then at half its TTL, a quarter after a failure; invalid ones never; a trigger publishes now', async () => {
  let queueBroken = true
  await withCluster({ monitor_ping_interval: 3_600_000 }, async (s) => {
    const t0 = s.clock.now()
    const times = (name: string) =>
      s.monitor.published.filter((m) => m.name === name).map((m) => (m.received_at / 1e6) - t0)
    await s.cluster.start()
    await s.clock.advance(0)
    // freespace: TTL 2 s, renewed every second.
    await s.clock.advance(2_500)
    assert.deepEqual(times('freespace'), [0, 1000, 2000])
    // Its sending fails at 3 s: retried a quarter TTL later.
    s.monitor.failing.add('freespace')
    await s.clock.advance(500) // t = 3000: fails
    s.monitor.failing.delete('freespace')
    await s.clock.advance(500) // t = 3500: sent, next at 4500
    await s.clock.advance(1_000)
    assert.deepEqual(times('freespace'), [0, 1000, 2000, 3500, 4500])
    assert.ok(s.logs.some((l) => l === 'warn sending metric freespace: cannot send freespace'))
    // tags: invalid (no tags set), never published; pinqueue threw at first: no TTL known, so
    // again after 30 s / 4, then every 30 s / 2 … of its own TTL once known (8 s → 4 s).
    assert.deepEqual(times('tag:none'), [])
    assert.deepEqual(times('pinqueue'), [])
    queueBroken = false
    await s.clock.advance(7_500 - 4_500)
    await s.clock.advance(4_000)
    assert.deepEqual(times('pinqueue'), [7_500, 11_500])
    assert.ok(s.logs.includes('error informer pinqueue: metrics not sent'), s.logs.join('\n'))
    // A trigger publishes every informer's valid metrics now, beside their loops.
    const before = s.monitor.published.length
    s.cluster.triggerInformers()
    await s.clock.advance(0)
    assert.deepEqual(
      s.monitor.published.slice(before).map((m) => m.name).sort(),
      ['freespace', 'pinqueue'],
    )
  }, {
    informers: (clock) => [
      informer(clock, 'freespace', 2_000),
      informer(clock, 'tag:none', 30_000, { valid: false }),
      informer(clock, 'pinqueue', 8_000, { throws: () => queueBroken }),
    ],
  })
})

Deno.test('publishMetricsNow: every informer and the ping at once, not before start, at most once a second', async () => {
  await withCluster({ monitor_ping_interval: 3_600_000 }, async (s) => {
    const count = () => s.monitor.published.length
    s.cluster.publishMetricsNow()
    await s.clock.advance(0)
    assert.equal(count(), 0, 'not started')
    await s.cluster.start()
    await s.clock.advance(0)
    const names = () => s.monitor.published.map((m) => m.name).sort()
    assert.deepEqual(names(), ['freespace', 'ping'])
    s.cluster.publishMetricsNow()
    await s.clock.advance(0)
    assert.deepEqual(names(), ['freespace', 'freespace', 'ping', 'ping'])
    s.cluster.publishMetricsNow() // within the second: nothing
    await s.clock.advance(999)
    assert.equal(count(), 4)
    await s.clock.advance(1)
    s.cluster.publishMetricsNow()
    await s.clock.advance(0)
    assert.equal(count(), 6)
  }, { informers: (clock) => [informer(clock, 'freespace', 60_000)] })
})

// ---- repinning ----

const PEER_A = '12D3KooWSpYaZGEBCRnpXeAgZyFtXUxPgzukPGnXfFdjxwxFkA1K'
const DEAD = '12D3KooWQm2JRqKuYBoFEg8MgFfVeXjQkwmhpsRDPGzfsk8yvhm8'

/**
 * The real allocation over a fixed view: every live member (SELF, OTHER, PEER_A) with free space,
 * most on OTHER; the dead peer has no metric (blacklisted anyway).
 */
function realAllocate(clock: ManualClock) {
  const space: [string, number][] = [[SELF, 100], [OTHER, 300], [PEER_A, 200]]
  return allocationFunction({
    allocator: balancedAllocator({ allocate_by: ['freespace'] }),
    monitor: {
      latestMetrics: (name: string) =>
        name !== 'freespace'
          ? []
          : space.map(([p, w]) => newMetric('freespace', p, String(w), 60_000, clock.now(), w)),
    },
  })
}

/** Pins `n` CIDs with these factors and allocations straight into the state. */
async function seedPins(
  s: Setup,
  tag: string,
  n: number,
  rf: [number, number],
  allocations: string[],
) {
  const pins: Pin[] = []
  for (let i = 0; i < n; i++) {
    pins.push(
      newPin(await cidOf(`${tag} ${i}`), {
        ...defaultPinOptions(),
        replication_factor_min: rf[0],
        replication_factor_max: rf[1],
      }),
    )
    pins[i].allocations = allocations
  }
  await s.state.apply(pins.map((pin) => ({ type: 'pin' as const, pin })))
  return pins
}

Deno.test('repinning: a ping alert moves the dead peer’s pins below rf min, only those this peer is closest to; others keep their allocations', async () => {
  let clock!: ManualClock
  await withCluster({ disable_repinning: false, monitor_ping_interval: 3_600_000 }, async (s) => {
    const members = [SELF, OTHER, PEER_A, DEAD]
    s.consensus.peers = () => Promise.resolve(members)
    const under = await seedPins(s, 'under', 40, [2, 2], [DEAD, PEER_A])
    const enough = await seedPins(s, 'enough', 10, [1, 2], [DEAD, PEER_A])
    const elsewhere = await seedPins(s, 'elsewhere', 10, [2, 2], [OTHER, PEER_A])
    await s.cluster.start()
    s.monitor.raise({ ...newMetric('ping', DEAD, '', 1000, s.clock.now()), triggered_at: 'now' })
    const mine = closestChecker(SELF, [SELF, OTHER, PEER_A])
    const expected = under.filter((p) => mine(p.cid)).map((p) => p.cid).sort()
    assert.ok(
      expected.length > 3 && expected.length < 30,
      `${expected.length} of 40 are this peer's`,
    )
    await waitFor(() => s.consensus.log.length === expected.length, { what: 'the re-pins' })
    await s.clock.advance(100)
    assert.deepEqual(s.consensus.log.map((l) => l.pin.cid).sort(), expected)
    for (const { op, pin } of s.consensus.log) {
      assert.equal(op, 'pin')
      // PEER_A stays; the free-est live peer joins it; the dead one is gone.
      assert.deepEqual(pin.allocations, [PEER_A, OTHER], pin.cid)
    }
    for (const p of [...enough, ...elsewhere]) {
      assert.deepEqual((await s.state.get(p.cid))!.allocations, p.allocations, 'unchanged')
    }
    assert.equal((await s.cluster.alerts())[0].peer, DEAD)
    assert.ok(s.logs.includes(`warn metric alert for ping: Peer: ${DEAD}.`), s.logs.join('\n'))
  }, { allocate: (req) => realAllocate(clock)(req), informers: (c) => ((clock = c), []) })
})

Deno.test('repinning: with disable_repinning (the default) an alert is recorded and nothing moves', async () => {
  await withCluster({ monitor_ping_interval: 3_600_000 }, async (s) => {
    s.consensus.peers = () => Promise.resolve([SELF, OTHER, PEER_A, DEAD])
    await seedPins(s, 'under', 20, [2, 2], [DEAD, PEER_A])
    await s.cluster.start()
    s.monitor.raise({ ...newMetric('ping', DEAD, '', 1000, s.clock.now()), triggered_at: 'now' })
    await waitFor(async () => (await s.cluster.alerts()).length === 1, { what: 'the alert' })
    s.monitor.raise({ ...newMetric('ping', OTHER, '', 1000, s.clock.now()), triggered_at: 'later' })
    await waitFor(async () => (await s.cluster.alerts()).length === 2, { what: 'the second alert' })
    await s.clock.advance(100)
    assert.equal(s.consensus.log.length, 0)
  })
})

Deno.test('peers rm: the removed peer’s pins move first (all of them), then it leaves the peerset', async () => {
  let clock!: ManualClock
  await withCluster({ disable_repinning: false }, async (s) => {
    s.consensus.peers = () => Promise.resolve([SELF, OTHER, PEER_A, DEAD])
    const order: string[] = []
    const logPin = s.consensus.logPin
    s.consensus.logPin = (pin, signal) => (order.push(`pin ${pin.cid}`), logPin(pin, signal))
    s.consensus.rmPeer = (id) => (order.push(`rm ${id}`), Promise.resolve())
    const under = await seedPins(s, 'under', 12, [2, 2], [DEAD, PEER_A])
    await s.cluster.peerRemove(DEAD)
    assert.equal(order.length, 13)
    assert.equal(order.at(-1), `rm ${DEAD}`)
    assert.deepEqual(order.slice(0, -1).sort(), under.map((p) => `pin ${p.cid}`).sort())
    for (const p of under) {
      assert.deepEqual((await s.state.get(p.cid))!.allocations, [PEER_A, OTHER])
    }
  }, { allocate: (req) => realAllocate(clock)(req), informers: (c) => ((clock = c), []) })
})

Deno.test('StateSync: an expired pin is unpinned by the one member closest to it', async () => {
  await withCluster({}, async (s) => {
    const members = [SELF, OTHER, PEER_A]
    s.consensus.peers = () => Promise.resolve(members)
    const expired: Pin[] = []
    for (let i = 0; i < 30; i++) {
      expired.push(newPin(await cidOf(`exp ${i}`), { expire_at: formatTime(s.clock.now() - 1000) }))
    }
    await s.state.apply(expired.map((pin) => ({ type: 'pin' as const, pin })))
    await s.cluster.stateSync()
    const mine = closestChecker(SELF, members)
    const want = expired.filter((p) => mine(p.cid)).map((p) => p.cid).sort()
    assert.ok(want.length > 0 && want.length < 30)
    assert.deepEqual(s.consensus.log.map((l) => l.pin.cid).sort(), want)
    assert.ok(s.consensus.log.every((l) => l.op === 'unpin'))
  })
})

// ---- expire_at ----

Deno.test('pin: an expire_at before now is refused; now itself and later are accepted', async () => {
  await withCluster({}, async (s) => {
    const now = s.clock.now()
    await rejectsWith(
      s.cluster.pin(await cidOf(1), opts({ expire_at: formatTime(now - 1) })),
      ValidationError,
      'pin.ExpireAt set before current time',
    )
    // Go's ExpireAt.Before(now): an expiry at exactly now is not before it.
    const atNow = await s.cluster.pin(await cidOf(2), opts({ expire_at: formatTime(now) }))
    assert.equal(atNow.expire_at, formatTime(now))
    const later = await s.cluster.pin(await cidOf(3), opts({ expire_at: formatTime(now + 1) }))
    assert.equal(later.expire_at, formatTime(now + 1))
    const never = await s.cluster.pin(await cidOf(4), opts({ expire_at: ZERO_TIME }))
    assert.equal(never.expire_at, ZERO_TIME)
    // As in Go, the Unix epoch is an expire_at in the past when pinning.
    await rejectsWith(
      s.cluster.pin(await cidOf(5), opts({ expire_at: '1970-01-01T00:00:00Z' })),
      ValidationError,
      'pin.ExpireAt set before current time',
    )
    assert.equal(s.consensus.log.length, 3)
  })
})

Deno.test('StateSync unpins pins that expired strictly before now; the zero time and the epoch never expire', async () => {
  await withCluster({}, async (s) => {
    const now = s.clock.now()
    const pins = {
      // Whole seconds: the state keeps expire_at to the second, as the reference's protobuf does.
      past: newPin(await cidOf('past'), { expire_at: formatTime(now - 1000) }),
      atNow: newPin(await cidOf('now'), { expire_at: formatTime(now) }),
      future: newPin(await cidOf('future'), { expire_at: formatTime(now + 60_000) }),
      zero: newPin(await cidOf('zero'), { expire_at: ZERO_TIME }),
      epoch: newPin(await cidOf('epoch'), { expire_at: '1970-01-01T00:00:00Z' }),
      shard: {
        ...newPin(await cidOf('shard'), { expire_at: formatTime(now - 1) }),
        type: 'shard-pin' as const,
      },
    }
    await s.state.apply(Object.values(pins).map((pin) => ({ type: 'pin' as const, pin })))
    await s.cluster.stateSync()
    assert.deepEqual(s.consensus.log.map((l) => `${l.op} ${l.pin.cid}`), [`unpin ${pins.past.cid}`])
    assert.equal(await s.state.has(pins.past.cid), false)
    // A shard is unpinned through its content root, never directly (Unpin's rule).
    assert.ok(await s.state.has(pins.shard.cid))
    assert.ok(
      s.logs.some((l) => l.includes('cannot unpin a shard directly')),
      s.logs.join('\n'),
    )
    assert.ok(
      s.logs.includes(`info unpinning ${pins.past.cid}: pin expired at ${pins.past.expire_at}`),
      s.logs.join('\n'),
    )

    await s.clock.advance(1)
    await s.cluster.stateSync()
    assert.equal(await s.state.has(pins.atNow.cid), false, 'expired once now is past it')
    assert.ok(await s.state.has(pins.future.cid))
    await s.clock.advance(60_000)
    await s.cluster.stateSync()
    assert.equal(await s.state.has(pins.future.cid), false)
    for (const p of [pins.zero, pins.epoch]) assert.ok(await s.state.has(p.cid), p.expire_at)
  })
})

// ---- re-pins of an existing CID ----

Deno.test('pin: re-pinning an existing CID: type and mode rules, allocations kept, re-committed', async () => {
  await withCluster({ replication_factor_min: 1, replication_factor_max: 2 }, async (s) => {
    const shard = await cidOf('shard')
    await s.state.apply([{ type: 'pin', pin: { ...newPin(shard), type: 'shard-pin' } }])
    await rejectsWith(
      s.cluster.pin(shard, opts()),
      ValidationError,
      'cannot repin CID with different tracking method, clear state with pin rm to proceed. ' +
        'New: pin. Was: shard-pin',
    )

    const cid = await cidOf('data')
    const first = await s.cluster.pin(cid, opts())
    await rejectsWith(
      s.cluster.pin(cid, opts({ mode: 'direct' })),
      ValidationError,
      'cannot repin a CID which is already pinned in recursive mode (new pin is pinned as ' +
        'direct). Unpin it first.',
    )
    // The same pin again is committed again (no short-cut), allocated knowing the current peers.
    await s.clock.advance(5000)
    const again = await s.cluster.pin(cid, opts({ name: 'renamed' }))
    assert.deepEqual(s.allocations.at(-1)?.current, first.allocations)
    assert.equal(again.name, 'renamed')
    assert.equal(again.timestamp, formatTime(s.clock.now()))
    assert.notEqual(again.timestamp, first.timestamp)
    assert.deepEqual(s.consensus.log.map((l) => l.op), ['pin', 'pin'])

    // direct → recursive is allowed.
    const d = await cidOf('direct')
    await s.cluster.pin(d, opts({ mode: 'direct' }))
    const upgraded = await s.cluster.pin(d, opts({ mode: 'recursive' }))
    assert.equal(upgraded.mode, 'recursive')
    assert.equal((await s.state.get(d))?.mode, 'recursive')
  })
})

Deno.test('pin: the timestamp is the clock time of the commit', async () => {
  await withCluster({}, async (s) => {
    const pin = await s.cluster.pin(await cidOf(1), opts())
    assert.equal(pin.timestamp, formatTime(s.clock.now()))
    assert.equal((await s.state.get(pin.cid))?.timestamp, pin.timestamp)
  })
})

// ---- pin updates ----

Deno.test('pin update: copies the existing pin to the new CID; name and a future expiry replace', async () => {
  await withCluster({ replication_factor_min: 1, replication_factor_max: 2 }, async (s) => {
    const from = await cidOf('from')
    const to = await cidOf('to')
    const old = await s.cluster.pin(
      from,
      opts({ name: 'v1', user_allocations: [OTHER], metadata: { k: 'v' } }),
    )
    const allocCalls = s.allocations.length
    await s.clock.advance(1000)
    const now = s.clock.now()
    const pin = await s.cluster.pin(
      to,
      opts({
        pin_update: from,
        name: 'v2',
        expire_at: formatTime(now + 10_000),
        // Ignored: an update keeps the existing pin's options.
        replication_factor_min: 2,
        replication_factor_max: 2,
        user_allocations: [SELF],
      }),
    )
    assert.equal(pin.cid, to)
    assert.equal(pin.pin_update, from)
    assert.equal(pin.name, 'v2')
    assert.equal(pin.expire_at, formatTime(now + 10_000))
    assert.equal(pin.timestamp, formatTime(now))
    assert.deepEqual(pin.allocations, old.allocations, 'allocations copied, not re-allocated')
    assert.equal(s.allocations.length, allocCalls)
    assert.equal(pin.replication_factor_min, 1)
    assert.equal(pin.replication_factor_max, 2)
    // The state does not keep user_allocations (nor does the reference's), so none are copied.
    assert.equal(pin.user_allocations, null)
    assert.deepEqual(pin.metadata, { k: 'v' })
    assert.ok(await s.state.has(from), 'the old CID stays pinned')
    assert.deepEqual((await s.state.get(to))?.pin_update, from)

    // No name, an expiry in the past: both kept from the existing pin.
    const to2 = await cidOf('to2')
    const kept = await s.cluster.pin(
      to2,
      opts({ pin_update: to, expire_at: formatTime(now - 1) }),
    )
    assert.equal(kept.name, 'v2')
    assert.equal(kept.expire_at, formatTime(now + 10_000))
  })
})

Deno.test('pin update: the source must exist and be a data pin; pin_update = cid is a plain pin', async () => {
  await withCluster({}, async (s) => {
    const to = await cidOf('to')
    await rejectsWith(
      s.cluster.pin(to, opts({ pin_update: await cidOf('absent') })),
      NotFoundError,
      PIN_NOT_FOUND,
    )
    const meta = await cidOf('meta')
    await s.state.apply([{ type: 'pin', pin: { ...newPin(meta), type: 'meta-pin' } }])
    await rejectsWith(
      s.cluster.pin(to, opts({ pin_update: meta })),
      ValidationError,
      'this pin type cannot be updated',
    )
    assert.equal(s.consensus.log.length, 0)
    const self = await s.cluster.pin(to, opts({ pin_update: to, name: 'same' }))
    assert.equal(self.cid, to)
    assert.equal(self.name, 'same')
    assert.deepEqual(s.consensus.log.map((l) => l.pin.cid), [to])
  })
})

// ---- unpin ----

Deno.test('unpin: by pin type, with the reference messages; returns the pin as it was', async () => {
  await withCluster({}, async (s) => {
    await rejectsWith(s.cluster.unpin(await cidOf('absent')), NotFoundError, PIN_NOT_FOUND)
    const typed = async (type: Pin['type']) => {
      const p = { ...newPin(await cidOf(type)), type }
      await s.state.apply([{ type: 'pin', pin: p }])
      return p
    }
    const shard = await typed('shard-pin')
    await rejectsWith(
      s.cluster.unpin(shard.cid),
      ClusterError,
      'cannot unpin a shard directly. Unpin content root CID instead',
    )
    const dag = await typed('clusterdag-pin')
    await rejectsWith(
      s.cluster.unpin(dag.cid),
      ClusterError,
      'cannot unpin a Cluster DAG directly. Unpin content root CID instead',
    )
    const bad = await typed('bad-type')
    await rejectsWith(s.cluster.unpin(bad.cid), ClusterError, 'unrecognized pin type')
    assert.equal(s.consensus.log.length, 0)

    const data = await s.cluster.pin(await cidOf('data'), opts({ name: 'gone soon' }))
    const removed = await s.cluster.unpin(data.cid)
    assert.equal(removed.name, 'gone soon')
    assert.equal(await s.state.has(data.cid), false)
    const meta = await typed('meta-pin')
    await s.cluster.unpin(meta.cid)
    assert.equal(await s.state.has(meta.cid), false)
  })
})

// ---- paths ----

Deno.test('pinPath / unpinPath: /ipfs/<cid> needs no IPFS call; other paths are resolved by IPFS', async () => {
  await withCluster({}, async (s) => {
    const cid = await cidOf('path')
    const v0 = CID.createV0((await sha256.digest(new TextEncoder().encode('v0'))) as never)
    assert.equal((await s.cluster.pinPath(`/ipfs/${cid}`, opts())).cid, cid)
    assert.equal((await s.cluster.pinPath(`/ipfs/${v0}/`, opts())).cid, v0.toString())
    assert.deepEqual(s.resolved, [])
    // The double resolves /ipfs/<cid>/<sub> to <cid>.
    assert.equal((await s.cluster.pinPath(`/ipfs/${cid}/a/b`, opts())).cid, cid)
    assert.deepEqual(s.resolved, [`/ipfs/${cid}/a/b`])
    assert.equal((await s.cluster.unpinPath(`/ipfs/${cid}`)).cid, cid)
    assert.equal(s.resolved.length, 1)
    assert.equal(await s.state.has(cid), false)
  })
})

// ---- size ----

Deno.test('pin: a pin over the state limit is refused, counted in bytes as the state counts them', async () => {
  await withCluster({}, async (s) => {
    // 33,000 two-byte characters: under the limit in UTF-16 units, over it in bytes.
    const name = 'é'.repeat(33_000)
    await assert.rejects(s.cluster.pin(await cidOf(1), opts({ name })), (e: Error) => {
      assert.ok(e instanceof ValidationError, String(e))
      assert.match(e.message, /^pin is too large to store: 66\d{3} bytes of JSON/)
      assert.ok(e.message.endsWith(`must stay under ${MAX_PIN_BYTES} bytes)`))
      return true
    })
    assert.equal(s.consensus.log.length, 0, 'refused before consensus')
    // A pin update that would grow past the limit is refused the same way.
    const from = await s.cluster.pin(await cidOf(2), opts())
    await assert.rejects(
      s.cluster.pin(await cidOf(3), opts({ pin_update: from.cid, name })),
      /pin is too large to store/,
    )
    assert.equal(s.consensus.log.length, 1)

    // Metadata counts too, each entry as the state stores it; just under the limit is taken.
    const metadata: Record<string, string> = {}
    for (let i = 0; i < 700; i++) metadata[`key-${i}`] = 'v'.repeat(90)
    await assert.rejects(
      s.cluster.pin(await cidOf(4), opts({ metadata })),
      /^ValidationError: pin is too large to store: 7\d{4} bytes of JSON/,
    )
    for (let i = 600; i < 700; i++) delete metadata[`key-${i}`]
    const taken = await s.cluster.pin(await cidOf(5), opts({ metadata }))
    assert.equal(Object.keys(taken.metadata ?? {}).length, 600)
    assert.equal(s.consensus.log.length, 2)
  })
})

// ---- loops ----

Deno.test('start: ping at once then every monitor_ping_interval; StateSync first after one interval', async () => {
  await withCluster({ monitor_ping_interval: 15_000, state_sync_interval: 60_000 }, async (s) => {
    const expired = newPin(await cidOf('exp'), { expire_at: formatTime(s.clock.now() - 1) })
    await s.state.apply([{ type: 'pin', pin: expired }])
    const t0 = s.clock.now()
    await s.cluster.start()
    assert.equal(s.tracker.started, 1)
    const pings = () => s.monitor.published.filter((m) => m.name === 'ping')
    await s.clock.advance(0)
    assert.equal(pings().length, 1)
    const ping = pings()[0]
    assert.equal(ping.peer, SELF)
    assert.equal(ping.expire, (t0 + 30_000) * 1_000_000, 'valid for twice the interval')
    assert.deepEqual(JSON.parse(ping.value), {
      peer_name: 'peer0',
      ipfs_id: OTHER,
      ipfs_addresses: [],
    })
    await s.clock.advance(14_999)
    assert.equal(pings().length, 1)
    await s.clock.advance(1)
    assert.equal(pings().length, 2)

    // Not at start (the reference's timer): the expired pin is still there until 60 s.
    const asleep = () => s.clock.pending() === 2 // ping and StateSync loops (no informers here)
    assert.ok(await s.state.has(expired.cid))
    await s.clock.advance(44_999)
    assert.ok(await s.state.has(expired.cid))
    assert.equal(s.consensus.log.length, 0)
    await s.clock.advance(1)
    await waitFor(asleep, { what: 'StateSync to finish' })
    assert.equal(await s.state.has(expired.cid), false)
    assert.deepEqual(s.consensus.log.map((l) => l.op), ['unpin'])

    // And again every interval, counted from the end of the last run.
    const later = newPin(await cidOf('later'), { expire_at: formatTime(s.clock.now() + 1000) })
    await s.state.apply([{ type: 'pin', pin: later }])
    await s.clock.advance(59_999)
    assert.ok(await s.state.has(later.cid))
    await s.clock.advance(1)
    await waitFor(asleep, { what: 'StateSync to finish' })
    assert.equal(await s.state.has(later.cid), false)

    await s.cluster.stop()
    await s.cluster.stop()
    assert.equal(s.clock.pending(), 0, 'stop leaves no timer behind')
  })
})

Deno.test('alerts: newest first; past 1000 the list starts over with the newest', async () => {
  await withCluster({}, async (s) => {
    await s.cluster.start()
    const alert = (i: number): Alert => ({
      ...newMetric('ping', `peer${i}`, '', 1000, s.clock.now()),
      triggered_at: formatTime(s.clock.now()),
    })
    s.monitor.raise(alert(1))
    s.monitor.raise(alert(2))
    await s.clock.advance(0)
    assert.deepEqual((await s.cluster.alerts()).map((a) => a.peer), ['peer2', 'peer1'])
    for (let i = 3; i <= 1001; i++) s.monitor.raise(alert(i))
    await s.clock.advance(0)
    assert.equal((await s.cluster.alerts()).length, 1001)
    s.monitor.raise(alert(1002))
    await s.clock.advance(0)
    assert.deepEqual((await s.cluster.alerts()).map((a) => a.peer), ['peer1002'])
  })
})

// ---- membership ----

Deno.test('peer add: consensus adds the peer, then its ID comes back over RPC with us among its peers', async () => {
  await withCluster({}, async (s) => {
    const added: string[] = []
    s.consensus.addPeer = (id) => (added.push(id), Promise.resolve())
    // Unreachable: the peer is in the peerset, the caller learns why its ID could not be read.
    await assert.rejects(s.cluster.peerAdd(OTHER), /peer unreachable/)
    assert.deepEqual(added, [OTHER])
    const handlers = rpcHandlers({
      cluster: s.cluster,
      tracker: s.tracker,
      ipfs: s.ipfs,
      consensus: s.consensus,
      connectedPeers: () => [],
    })
    s.mesh.serve(OTHER, {
      ...handlers,
      'Cluster.ID': async (args, ctx) => ({
        ...await handlers['Cluster.ID'](args, ctx),
        id: OTHER,
      }),
    }, () => true)
    const id = await s.cluster.peerAdd(OTHER)
    assert.equal(id.id, OTHER)
    assert.ok(id.cluster_peers.includes(SELF))
  })
})

Deno.test('peer rm: the last member cannot go (the reference words); others go through consensus', async () => {
  await withCluster({}, async (s) => {
    const removed: string[] = []
    s.consensus.rmPeer = (id) => (removed.push(id), Promise.resolve())
    await rejectsWith(
      s.cluster.peerRemove(SELF),
      ClusterError,
      'cannot remove ourselves from a 1-peer cluster',
    )
    assert.deepEqual(removed, [])
    await s.cluster.peerRemove(OTHER)
    assert.deepEqual(removed, [OTHER])
  })
})

Deno.test('pin: a re-pin by options keeps the pin’s API records; commitPin sets them exactly', async () => {
  await withCluster({}, async (s) => {
    const cid = await cidOf(1)
    const record = '{"created":"2026-12-07T00:00:00Z","name":"a"}'
    await s.cluster.commitPin(newPin(cid, opts({ metadata: { 'pinsvc/k1': record, app: '1' } })))
    // `ctl pin add --replication 2 <cid>` with other metadata: the request survives.
    const re = await s.cluster.pin(cid, opts({ metadata: { app: '2' }, name: 'renamed' }))
    assert.deepEqual(re.metadata, { app: '2', 'pinsvc/k1': record })
    assert.deepEqual((await s.state.get(cid))?.metadata, { app: '2', 'pinsvc/k1': record })
    // A re-pin that sets records of its own manages them (the Pinning Service API's way).
    const own = await s.cluster.pin(cid, opts({ metadata: { 'pinsvc/k2': record } }))
    assert.deepEqual(own.metadata, { 'pinsvc/k2': record })
    // A whole pin is committed as given: its last record removed.
    const gone = await s.cluster.commitPin(newPin(cid, opts({ metadata: { app: '3' } })))
    assert.deepEqual(gone.metadata, { app: '3' })
  })
})

Deno.test('start: ConnectSwarms again one ping interval later reaches members known only by then (a CRDT peerset)', async () => {
  await withCluster({}, async (s) => {
    // At start this peer knows only itself (a CRDT peer before any ping arrived).
    let members = [SELF]
    s.consensus.peers = () => Promise.resolve(members)
    const connected: string[][] = []
    s.ipfs.connectSwarms = (addrs) => (connected.push(addrs), Promise.resolve())
    const handlers = rpcHandlers({
      cluster: s.cluster,
      tracker: s.tracker,
      ipfs: s.ipfs,
      consensus: s.consensus,
      connectedPeers: () => [],
    })
    const otherIpfs = '/ip4/127.0.0.1/tcp/4002/p2p/QmOtherIpfs'
    s.mesh.serve(OTHER, {
      ...handlers,
      'Cluster.ID': async (args, ctx) => ({
        ...await handlers['Cluster.ID'](args, ctx),
        id: OTHER,
        ipfs: { id: 'QmOtherIpfs', addresses: [otherIpfs], error: '' },
      }),
    }, () => true)
    await s.cluster.start()
    await turn()
    assert.deepEqual(connected, [])
    members = [SELF, OTHER] // its ping arrived
    await s.clock.advance(clusterSection.defaults().monitor_ping_interval)
    await waitFor(() => connected.length === 1, { what: 'a second ConnectSwarms' })
    assert.deepEqual(connected, [[otherIpfs]])
  })
})
