/**
 * What the multi-peer end-to-end tests share: a TestCluster whose peers each run beside their
 * own real Kubo, what a Kubo pins, its swarm peers, and our `ctl` aimed at one peer.
 *
 * @example
 * ```ts
 * const { cluster, kubos } = await kuboCluster(3)
 * await cluster.startAll()
 * equal((await kuboPins(kubos[0])).has(cid), true)
 * ```
 */
import { type ClusterOptions, type ClusterPeer, TestCluster } from '../support/cluster.ts'
import { type KuboDaemon, startKubo, type StartKuboOptions } from '../support/kubo.ts'
import { runMain, type RunResult } from '../support/peer.ts'
import { waitFor } from '../support/wait.ts'

/** A cluster of `peers` founders, peer `i` beside `kubos[i]` (joiners' Kubos are appended). */
export async function kuboCluster(
  peers: number,
  opts: Partial<ClusterOptions> & { kubo?: (index: number) => StartKuboOptions } = {},
): Promise<{ cluster: TestCluster; kubos: KuboDaemon[] }> {
  const kubos: KuboDaemon[] = []
  const cluster = await TestCluster.create({
    impl: 'ours',
    peers,
    ...opts,
    ipfs: async (index) => {
      const k = await startKubo(opts.kubo?.(index))
      kubos[index] = k
      return { api: k.apiMultiaddr, stop: k.stop }
    },
  })
  return { cluster, kubos }
}

/** The tests' timings: watches and pings every second, so that departures show quickly. */
// deno-lint-ignore no-explicit-any
export function quickTimings(cfg: any): void {
  cfg.cluster.peer_watch_interval = '1s'
  cfg.cluster.monitor_ping_interval = '1s'
}

/** The CIDs a Kubo pins recursively or directly. */
export async function kuboPins(kubo: KuboDaemon): Promise<Set<string>> {
  const res = await fetch(`${kubo.apiUrl}/api/v0/pin/ls?type=all&stream=true`, { method: 'POST' })
  const out = new Set<string>()
  for (const line of (await res.text()).split('\n')) {
    if (!line.trim()) continue
    const o = JSON.parse(line)
    if (o.Type !== 'indirect') out.add(o.Cid)
  }
  return out
}

/** The peer IDs a Kubo is swarm-connected to. */
export async function kuboSwarmPeers(kubo: KuboDaemon): Promise<Set<string>> {
  const res = await fetch(`${kubo.apiUrl}/api/v0/swarm/peers`, { method: 'POST' })
  const body = await res.json()
  return new Set((body.Peers ?? []).map((p: { Peer: string }) => p.Peer))
}

/** Waits until every Kubo of `kubos` pins `cid`. */
export async function waitPinnedEverywhere(
  kubos: KuboDaemon[],
  cid: string,
  timeoutMs = 60_000,
): Promise<void> {
  for (const [i, k] of kubos.entries()) {
    await waitFor(async () => (await kuboPins(k)).has(cid), {
      what: `Kubo ${i} to pin ${cid}`,
      timeoutMs,
    })
  }
}

/** `ctl --host <peer's REST API> <args>` with the ctl task's permissions. */
export async function ctl(peer: ClusterPeer, args: string[]): Promise<RunResult> {
  return await runMain(['ctl', '--host', `/ip4/127.0.0.1/tcp/${peer.restPort}`, ...args])
}

/** The NDJSON objects of a REST answer body. */
// deno-lint-ignore no-explicit-any
export function ndjson(body: string): any[] {
  return body.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
}

/** Adds content to a Kubo (not pinned) and returns its CID. */
export async function content(kubo: KuboDaemon, label: string): Promise<string> {
  return await kubo.add(new TextEncoder().encode(`${label} ${crypto.randomUUID()}`))
}

/** Waits until `peers` (default: every running peer) are ready and form one cluster. */
export async function waitAllReady(
  cluster: TestCluster,
  peers: ClusterPeer[] = cluster.peers.filter((p) => p.proc?.running()),
): Promise<void> {
  for (const p of peers) await cluster.waitReady(p, 90_000)
  await cluster.waitFormed(60_000)
}

/** The IDs a peer's `GET /peers` lists, sorted. */
export async function listed(cluster: TestCluster, p: ClusterPeer): Promise<string[]> {
  return ndjson((await cluster.request(p, 'GET', '/peers')).body).map((id) => id.id).sort()
}

/** Waits until `peer` holds a valid `name` metric of `n` peers (`GET /monitor/metrics/{name}`). */
export async function waitMetricPeers(
  cluster: TestCluster,
  peer: ClusterPeer,
  name: string,
  n: number,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(async () => {
    const r = await cluster.request(peer, 'GET', `/monitor/metrics/${name}`)
    return r.status === 200 && JSON.parse(r.body).length === n
  }, { what: `${peer.name}: ${name} of ${n} peers`, timeoutMs })
}
