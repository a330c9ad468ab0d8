/**
 * One peer of `bench/raft_net.ts`'s three-process run: a libp2p host, `libp2pTransport` and
 * `raftConsensus`, driven by one-line commands on stdin, each answered by one JSON line on
 * stdout:
 *
 * - `status` → `{ role, leader }`
 * - `load <proposers> <seconds>` → `{ pinsPerSec }` (closed loops of `logPin` on this peer)
 * - `latency <samples>` → `{ p50, p99 }` (one `logPin` at a time)
 * - `cpu` → `{ us }` (this process's user + system CPU time so far)
 * - `stop` → stops the peer and exits
 *
 * Started by the parent as `deno run … bench/raft_net_peer.ts <identities.json> <index>`; the
 * identities (keys as protobuf, base64) come from the parent's `NetCluster.create`.
 */
import '../src/deno_shim.ts'
import { cpuUsage } from 'node:process'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { NetCluster, type NetIdentity } from '../test/consensus/raft/libp2p_cluster.ts'
import { closedLoops, pinsFor, sequentialLatency } from './raft.ts'

interface WireIdentity {
  key: string
  id: string
  port: number
  path: string
}

const [file, indexArg] = Deno.args
const wire: WireIdentity[] = JSON.parse(await Deno.readTextFile(file))
const who: NetIdentity[] = wire.map((w) => ({
  ...w,
  key: privateKeyFromProtobuf(Uint8Array.from(atob(w.key), (c) => c.charCodeAt(0))),
}))
const index = Number(indexArg)
const cluster = NetCluster.of(who)
const node = await cluster.start(who[index].id)
const pins = await pinsFor(200_000, `raft net process ${index}`)
let next = 0
const take = () => pins[next++ % pins.length]
const out = (v: unknown) => Deno.stdout.write(new TextEncoder().encode(JSON.stringify(v) + '\n'))

let buffered = ''
const decoder = new TextDecoder()
for await (const chunk of Deno.stdin.readable) {
  buffered += decoder.decode(chunk, { stream: true })
  let nl
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const [cmd, a, b] = buffered.slice(0, nl).trim().split(/\s+/)
    buffered = buffered.slice(nl + 1)
    if (cmd === 'status') {
      const s = node.consensus.status()
      await out({ role: s.role, leader: await node.consensus.leader().catch(() => '') })
    } else if (cmd === 'load') {
      await closedLoops(Number(a), 0.3, () => node.consensus.logPin(take()))
      const pinsPerSec = await closedLoops(
        Number(a),
        Number(b),
        () => node.consensus.logPin(take()),
      )
      await out({ pinsPerSec })
    } else if (cmd === 'latency') {
      await out(await sequentialLatency(Number(a), () => node.consensus.logPin(take())))
    } else if (cmd === 'cpu') {
      const u = cpuUsage()
      await out({ us: u.user + u.system })
    } else if (cmd === 'stop') {
      await cluster.stop(node.id)
      await out({ stopped: true })
      Deno.exit(0)
    }
  }
}
