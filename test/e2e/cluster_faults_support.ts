/**
 * What the fault-injection tests of a real cluster (test/e2e/cluster_faults*.test.ts) share:
 * pins that every real Kubo can pin at once, the pinset a peer holds, the pins a Kubo holds, a
 * pool of REST clients that records what was acknowledged, and each peer's view of the Raft
 * leader per term, read from its log.
 *
 * The CIDs are inline (identity multihash, raw codec): a Kubo pins one without fetching a block,
 * so a test with real Kubo measures the cluster, not bitswap.
 *
 * @example
 * ```ts
 * const cids = inlineCids('kill9', 1000)
 * const pool = new IngestPool(cluster, cids, 64)
 * await pool.until(() => pool.acked.length >= 500)
 * await pool.stop()
 * ```
 */
import { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import type { ClusterPeer, TestCluster } from '../support/cluster.ts'
import { type KuboDaemon, startKubo } from '../support/kubo.ts'
import { waitFor } from '../support/wait.ts'

/** `n` distinct inline CIDs, different for every call (a random salt). */
export function inlineCids(tag: string, n: number): string[] {
  const salt = crypto.randomUUID().slice(0, 8)
  const enc = new TextEncoder()
  return Array.from(
    { length: n },
    (_, i) => CID.createV1(0x55, identity.digest(enc.encode(`${tag} ${salt} ${i}`))).toString(),
  )
}

/** The CIDs of a peer's pinset (`GET /allocations`, streamed). */
export async function pinsetOf(cluster: TestCluster, peer: ClusterPeer): Promise<Set<string>> {
  const out = new Set<string>()
  for await (const pin of cluster.client(peer).allocations()) out.add(pin.cid)
  return out
}

/** The recursive pins of a Kubo (`pin/ls?type=recursive`, streamed). */
export async function kuboPins(kubo: KuboDaemon): Promise<Set<string>> {
  const res = await fetch(`${kubo.apiUrl}/api/v0/pin/ls?type=recursive&stream=true`, {
    method: 'POST',
  })
  if (!res.ok) throw new Error(`pin/ls: HTTP ${res.status} ${await res.text()}`)
  const out = new Set<string>()
  for (const line of (await res.text()).split('\n')) if (line.trim()) out.add(JSON.parse(line).Cid)
  return out
}

/** Those of `want` that `have` lacks. */
export function missing(want: Iterable<string>, have: Set<string>): string[] {
  return [...want].filter((c) => !have.has(c))
}

/** Waits until `peer`'s pinset holds every CID of `want`; throws with how many it lacks. */
export async function waitPinset(
  cluster: TestCluster,
  peer: ClusterPeer,
  want: readonly string[],
  timeoutMs: number,
): Promise<void> {
  let lack: string[] = []
  await waitFor(async () => {
    lack = missing(want, await pinsetOf(cluster, peer))
    return lack.length === 0
  }, { what: `${peer.name}'s pinset to hold ${want.length} pins`, timeoutMs }).catch((err) => {
    throw new Error(`${err.message}: ${lack.length} missing, e.g. ${lack.slice(0, 3).join(' ')}`)
  })
}

/** Waits until a Kubo pins every CID of `want`; throws with how many it lacks. */
export async function waitKuboPins(
  kubo: KuboDaemon,
  name: string,
  want: readonly string[],
  timeoutMs: number,
): Promise<void> {
  let lack: string[] = [...want]
  await waitFor(async () => {
    lack = missing(lack, await kuboPins(kubo))
    return lack.length === 0
  }, { what: `${name}'s Kubo to pin ${want.length} CIDs`, timeoutMs }).catch((err) => {
    throw new Error(`${err.message}: ${lack.length} missing, e.g. ${lack.slice(0, 3).join(' ')}`)
  })
}

/**
 * The `ipfs` option of TestCluster.create for a real Kubo beside every peer: `kubos[i]` is peer
 * i's (TestCluster.close stops them).
 */
export function kuboPerPeer(kubos: KuboDaemon[]) {
  return async (i: number) => {
    const kubo = await startKubo()
    kubos[i] = kubo
    return { api: kubo.apiMultiaddr, stop: kubo.stop }
  }
}

/** Starts every founder, waits until all are ready and form one cluster; returns the leader. */
export async function startFormed(cluster: TestCluster, readyMs = 90_000): Promise<ClusterPeer> {
  cluster.startAll()
  for (const p of cluster.peers) await cluster.waitReady(p, readyMs)
  await cluster.waitFormed(30_000)
  return await cluster.waitLeader(30_000)
}

/**
 * Pins `cids` through the peers `via` in turn, `concurrency` at a time (so several log entries),
 * and asserts each was acknowledged (200).
 */
export async function pinAll(
  cluster: TestCluster,
  via: ClusterPeer[],
  cids: string[],
  concurrency = 8,
): Promise<void> {
  for (let i = 0; i < cids.length; i += concurrency) {
    await Promise.all(
      cids.slice(i, i + concurrency).map(async (cid, j) => {
        const peer = via[(i + j) % via.length]
        const res = await pinThrough(cluster, peer, cid)
        if (res.status !== 200) {
          throw new Error(`pin ${cid} through ${peer.name}: ${res.status} ${res.body}`)
        }
      }),
    )
  }
}

/** One write through the REST API: its HTTP status and body, or status 0 and the fetch error. */
export async function pinThrough(
  cluster: TestCluster,
  peer: ClusterPeer,
  cid: string,
  timeoutMs = 60_000,
): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now()
  const res = await cluster.request(peer, 'POST', `/pins/${cid}`, { timeoutMs })
    .catch((err) => ({ status: 0, body: (err as Error).message }))
  return { ...res, ms: Date.now() - t0 }
}

/**
 * `clients` concurrent REST clients, each pinning the next CID of `cids` through a running peer
 * (client `c` starts at peer `c mod N` and moves to the next running one when a request fails),
 * until the CIDs run out or `stop()`. Every 2xx is recorded in `acked` with when it was sent.
 */
export class IngestPool {
  readonly acked: { cid: string; sentAt: number }[] = []
  readonly failed: { cid: string; status: number; body: string }[] = []
  #next = 0
  #stopped = false
  readonly #done: Promise<void>

  constructor(
    readonly cluster: TestCluster,
    readonly cids: readonly string[],
    clients: number,
  ) {
    this.#done = Promise.all(Array.from({ length: clients }, (_, c) => this.#client(c)))
      .then(() => {})
  }

  async #client(c: number): Promise<void> {
    const peers = this.cluster.peers
    let at = c % peers.length
    while (!this.#stopped && this.#next < this.cids.length) {
      const up = peers.filter((p) => p.proc?.running())
      if (up.length === 0) return
      while (!peers[at].proc?.running()) at = (at + 1) % peers.length
      const peer = peers[at]
      const cid = this.cids[this.#next++]
      const sentAt = Date.now()
      const res = await pinThrough(this.cluster, peer, cid, 60_000)
      if (res.status >= 200 && res.status < 300) this.acked.push({ cid, sentAt })
      else {
        this.failed.push({ cid, status: res.status, body: res.body.slice(0, 200) })
        at = (at + 1) % peers.length
      }
    }
  }

  /** Waits for `cond` while the clients run (throws after `timeoutMs`). */
  async until(cond: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
    await waitFor(cond, { what, timeoutMs })
  }

  /** Stops sending and waits for the requests in flight. */
  async stop(): Promise<void> {
    this.#stopped = true
    await this.#done
  }
}

/** One role line of a peer's log: what it believed at that moment. */
export interface RoleView {
  peer: string
  at: string
  role: string
  leader: string
  term: number
}

/**
 * Every role change a peer logged (`raft: <id> is <role>, leader <id>, term <n>`, the consensus
 * logger at debug, which TestCluster turns on), oldest first.
 */
export async function roleViews(peer: ClusterPeer, logPath: string): Promise<RoleView[]> {
  const log = await Deno.readTextFile(logPath)
  const re = /^(\S+)\t\S+\tconsensus\traft: \S+ is (\S+), leader (\S+), term (\d+)$/gm
  return [...log.matchAll(re)].map((m) => ({
    peer: peer.name,
    at: m[1],
    role: m[2],
    leader: m[3],
    term: Number(m[4]),
  }))
}
