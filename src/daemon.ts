/**
 * The service daemon: builds every component of one peer from its config folder, starts them in
 * order, serves until a signal, and shuts down in the reverse order, once (a second signal warns,
 * a third exits at once — as the reference does).
 *
 * Under Raft (`consensus.raft`), the peer's Raft data decides how it starts
 * (consensus/raft/data_folder.ts): a founder forms the cluster with `init_peerset`, a clean peer
 * given `--bootstrap` (or `cluster.bootstrap`) joins through a member, a member resumes, and
 * anything else is refused with the fix. Once ready, the peer watches the peerset
 * (cluster/membership.ts): when it was removed, or when it leaves on shutdown (`--leave`,
 * `leave_on_shutdown`), it stops and moves its Raft data aside so that its next start is a clean
 * one.
 *
 * Under CRDT (`consensus.crdt`, consensus/crdt/start.ts, loaded only then) there is no membership
 * to join or leave: `--bootstrap` only dials the peers (and trusts them unless `--no-trust`, as
 * the reference does), the peerset is whoever pings, and the monitor keeps every peer's metrics.
 *
 * @example
 * ```ts
 * const peer = await startPeer({ configDir, env: Deno.env.toObject(), logging: logging('info') })
 * await peer.stop()
 * ```
 */
import type {
  API,
  ApplyHooks,
  Consensus,
  Informer,
  IPFSConnector,
  PeerMonitor,
  PinTracker,
} from './components.ts'
import { loadServiceConfig, type ServiceConfig } from './service_config.ts'
import { loadIdentity } from './config/identity.ts'
import { acquireLock, type FolderLock } from './util/lock.ts'
import type { Logger, Logging } from './util/log.ts'
import { type ClusterHost, hostOptionsFrom, startHost } from './net/host.ts'
import { dataFolder, openStateDb } from './state/open.ts'
import { kvState, type PinState } from './state/kv_state.ts'
import { raftConsensus } from './consensus/raft/raft_consensus.ts'
import { raftSection } from './consensus/raft/config.ts'
import { backupName, checkDataFolder, cleanupDataFolder } from './consensus/raft/data_folder.ts'
import { exists } from './util/fs.ts'
import { libp2pTransport } from './consensus/raft/libp2p_transport.ts'
import { rpcWire, type RpcWireOptions } from './rpc/wire.ts'
import { rpcHandlers } from './rpc/handlers.ts'
import type { RpcHandlers } from './rpc/methods.ts'
import { join, leaveCluster, watchRemoval } from './cluster/membership.ts'
import { Cluster } from './cluster.ts'
import { ipfsHttpConnector } from './ipfsconn/ipfshttp/connector.ts'
import { ipfsHttpSection } from './ipfsconn/ipfshttp/config.ts'
import { statelessTracker } from './pintracker/stateless.ts'
import { Foreground } from './util/foreground.ts'
import { statelessSection } from './pintracker/config.ts'
import { restApi } from './api/rest/server.ts'
import { ipfsProxy } from './api/ipfsproxy/server.ts'
import { pinSvcApi } from './api/pinsvc/server.ts'
import { requestIndex } from './api/pinsvc/index.ts'
import { contentAdder } from './adder/content.ts'
import { buildAllocate, buildInformers, buildMonitor } from './daemon_parts.ts'
import { pubsubMetrics } from './monitor/pubsub_transport.ts'
import { errorMessage } from './errors.ts'
import { NoLeaderError } from './consensus/raft/core/errors.ts'
import { systemClock } from './util/clock.ts'
import { parsePeerMultiaddr } from './config/peer_multiaddr.ts'
import { startObservations } from './observations/start.ts'
import type { MetricSources } from './observations/metrics.ts'

/** Options of a peer start. */
export interface PeerOptions {
  configDir: string
  env: Record<string, string>
  logging: Logging
  leave?: boolean
  bootstrap?: string[]
  /** CRDT: do not trust the `--bootstrap` peers (the reference's `--no-trust`). */
  noTrust?: boolean
  /** A configuration loaded already (ipfs-cluster-follow's): service.json is not read. */
  config?: ServiceConfig
  /** This peer's departures from the RPC policy table (ipfs-cluster-follow closes RepoGCLocal). */
  rpcPolicy?: RpcWireOptions['policy']
  /** `daemon --stats` / `--tracing`: on whatever `observations` says. */
  stats?: boolean
  tracing?: boolean
}

/** A running peer. */
export interface Peer {
  cluster: Cluster
  config: ServiceConfig
  apis: API[]
  /** Resolves when the peer is ready (consensus and IPFS up). */
  ready: Promise<void>
  /**
   * Resolves once the peer stopped on its own: removed from the cluster (`code` 0), or unable to
   * start (it could not join, consensus failed: `code` 1). `reason` is the one line it logged.
   */
  ended: Promise<{ code: number; reason: string }>
  stop(): Promise<void>
}

/** Builds and starts a peer. APIs answer at once; `ready` resolves when IPFS is reachable. */
export async function startPeer(opts: PeerOptions): Promise<Peer> {
  const log = opts.logging.get('cluster')
  // What service.json holds that this peer does not act on is said once, here.
  const configLog = opts.logging.get('config')
  const cfg = opts.config ??
    await loadServiceConfig(opts.configDir, opts.env, (m) => configLog.warn(m))
  // The connector's module (Helia for the embedded node) loads while the rest of the peer starts.
  const connector = loadConnector(cfg)
  connector.catch(() => {}) // awaited (and reported) in build()
  const ident = await loadIdentity(opts.configDir, opts.env, (m) => configLog.warn(m))
  const lock = await acquireLock(opts.configDir)
  const stack: { name: string; stop: () => Promise<void> | void }[] = [{
    name: 'lock',
    stop: () => lock.release(),
  }]
  const stopAll = async () => {
    for (const part of stack.reverse()) {
      try {
        await part.stop()
      } catch (err) {
        log.warn(`stopping ${part.name}: ${errorMessage(err)}`)
      }
    }
    stack.length = 0
  }
  try {
    return await build(opts, cfg, connector, ident, lock, stack, stopAll, log)
  } catch (err) {
    await stopAll()
    throw err
  }
}

async function build(
  opts: PeerOptions,
  cfg: ServiceConfig,
  connector: Promise<ConnectorFactory>,
  ident: Awaited<ReturnType<typeof loadIdentity>>,
  _lock: FolderLock,
  stack: { name: string; stop: () => Promise<void> | void }[],
  stopAll: () => Promise<void>,
  log: Logger,
): Promise<Peer> {
  // First in, last out: the endpoint answers (and the spans end) until every component stopped.
  const obs = await startObservations({
    metrics: cfg.metrics,
    tracing: cfg.tracing,
    stats: opts.stats,
    tracingFlag: opts.tracing,
    peername: cfg.cluster.peername,
    env: opts.env,
    log: opts.logging.get('observations'),
  })
  stack.push({ name: 'observations', stop: () => obs.stop() })
  const crdtCfg = cfg.crdt
  const raftCfg = cfg.raft ?? raftSection.defaults()
  const raftLog = opts.logging.get('raft')
  const folder = dataFolder(opts.configDir, cfg)
  const bootstrap = opts.bootstrap?.length ? opts.bootstrap : cfg.cluster.bootstrap
  // Set when this peer leaves the cluster (removed, or --leave): its Raft data is moved aside
  // once the database is closed, before the lock goes.
  let departed = false
  if (!crdtCfg) {
    stack.push({
      name: 'raft data',
      stop: async () => {
        if (departed) await cleanupDataFolder(folder, raftCfg.backups_rotate, raftLog)
      },
    })
  }

  // One database for the pinset and the consensus's data (the Raft log, or the CRDT replica):
  // a write and its effect on the pinset go in one commit.
  const db = await openStateDb(opts.configDir, cfg)
  const state: PinState = kvState(db, true)
  stack.push({ name: 'state', stop: () => state.close() })
  // What the stored Raft data allows: found, join, resume — or a one-line refusal with the fix.
  const plan = crdtCfg ? undefined : await checkDataFolder(db, {
    folder,
    self: ident.id,
    secret: cfg.cluster.secret,
    initPeerset: raftCfg.init_peerset ?? [],
    bootstrap: bootstrap.length > 0,
  }, raftLog)
  const joining = plan?.kind === 'fresh' && bootstrap.length > 0
  // The tracker's mark of the last clean stop, taken before consensus applies anything (a new
  // term's first entry alone moves the applied index the mark was recorded with).
  const syncMarkAtStart = state.takeSyncMark().catch((err) => {
    log.warn(`pin tracker mark: ${errorMessage(err)}`)
    return undefined
  })
  // API requests mark the foreground; background work (the tracker's catch-up, the Pinning
  // Service index) steps aside while it is busy.
  const foreground = new Foreground()
  // The Pinning Service API's index of requests, beside the pinset and fed by the apply hooks:
  // opened before consensus applies anything (it checks its clean-stop mark against the applied
  // index), stopped after consensus (its mark then covers every hook).
  const requests = cfg.pinsvcapi
    ? requestIndex({
      kv: db,
      state,
      appliedIndex: () => state.appliedIndex(),
      foreground,
      log: opts.logging.get('pinsvcapi'),
    })
    : undefined
  if (requests) {
    await requests.open()
    stack.push({ name: 'pinning service index', stop: () => requests.stop() })
  }

  // The peerstore file and peer_addresses load into the host, which dials the first members.
  const host: ClusterHost = await startHost({
    privateKey: ident.privateKey,
    ...hostOptionsFrom(cfg.cluster, opts.configDir),
    log,
  })
  let wasReady = false
  // The reference saves the peerstore only if the peer became ready.
  stack.push({ name: 'host', stop: () => host.stop({ save: wasReady && !departed }) })

  // The connector triggers the informers (`informer_trigger_interval`); the cluster, built
  // later, pushes them.
  let triggerInformers = () => {}
  const ipfs: IPFSConnector = await (await connector)(opts, () => triggerInformers())
  stack.push({ name: 'ipfs connector', stop: () => ipfs.stop() })

  let ipfsIdCache: { id?: string; addresses?: string[] } = {}
  const trackerLog = opts.logging.get('pintracker')
  const stateless = statelessTracker(cfg.stateless ?? statelessSection.defaults(), {
    peerId: ident.id,
    peername: () => cfg.cluster.peername,
    ipfs,
    // Through consensus, whose reads wait for the applications it holds (ready_loop.ts); the
    // tracker reads nothing before consensus exists.
    state: () => consensus.state(),
    ipfsId: () => ipfsIdCache,
    recoverIntervalMs: cfg.cluster.pin_recover_interval,
    log: (level, msg) => trackerLog[level](msg),
    foreground,
    // In the state's KV, so that a new pinset (import, cleanup, restored snapshot) drops it.
    syncMark: { put: (mark) => state.putSyncMark(mark), take: () => syncMarkAtStart },
  })
  const tracker: PinTracker = stateless
  stack.push({ name: 'pin tracker', stop: () => tracker.stop() })

  const consensusLog = opts.logging.get('consensus')
  // The tracker logs its own failures (rate-limited); a rejection here is one of those, or the
  // tracker stopping.
  const hooks: ApplyHooks = {
    onPin: (pin) => {
      void tracker.track(pin).catch(() => {})
      requests?.onPin(pin)
    },
    onUnpin: (pin) => {
      void tracker.untrack(pin).catch(() => {})
      requests?.onUnpin(pin)
    },
    onRestore: () => {
      tracker.resync()
      requests?.onRestore()
    },
  }
  // The monitor is built below; the CRDT peerset asks it only once the peer runs.
  const built: { monitor?: PeerMonitor } = {}
  let raft: ReturnType<typeof raftConsensus> | undefined
  let consensus: Consensus
  if (crdtCfg) {
    const { startCrdtConsensus } = await import('./consensus/crdt/start.ts')
    const crdt = await startCrdtConsensus(crdtCfg, {
      peerId: ident.id,
      kv: db,
      state,
      host,
      hooks,
      validPeers: (metric) => built.monitor?.latestMetrics(metric).map((m) => m.peer) ?? [],
      // The reference trusts the peers it is told to bootstrap to, unless --no-trust.
      trusted: opts.noTrust ? [] : bootstrap.map((a) => parsePeerMultiaddr(a).id),
      log: consensusLog,
    })
    consensus = crdt
    stack.push({ name: 'consensus', stop: () => crdt.stop() })
    await crdt.opened
  } else {
    const transport = libp2pTransport({ libp2p: host.libp2p, log: consensusLog })
    stack.push({ name: 'raft transport', stop: () => transport.stop() })
    raft = raftConsensus(raftCfg, {
      peerId: ident.id,
      kv: db,
      state,
      transport,
      // The plan's membership for new data: init_peerset and self, or nobody (a joiner).
      initialVoters: plan?.kind === 'fresh' ? plan.voters : undefined,
      hooks,
      log: consensusLog,
    })
    consensus = raft
    const r = raft
    stack.push({ name: 'consensus', stop: () => r.stop() })
    await raft.opened
  }

  // The handlers exist once the Cluster does; the wire looks them up per call.
  const handlers = {} as RpcHandlers
  const rpc = await rpcWire({
    libp2p: host.libp2p,
    handlers,
    isTrusted: (peer) => consensus.isTrustedPeer(peer),
    policy: opts.rpcPolicy,
    log: opts.logging.get('rpc'),
  })
  stack.push({ name: 'rpc', stop: () => rpc.stop() })

  const monitorLog = opts.logging.get('monitor')
  const metricsTransport = pubsubMetrics({
    pubsub: host.pubsub,
    log: (level, msg) => monitorLog[level](msg),
  })
  // Raft: metrics of members only. CRDT: no filter (reference §5), the peerset is who pings.
  const r = raft
  const peerMonitor = buildMonitor(cfg, {
    transport: metricsTransport,
    peers: r ? () => r.status().voters : undefined,
    log: monitorLog,
  })
  built.monitor = peerMonitor
  if (obs.metrics) {
    const raftNow = raft
    Object.assign(
      obs.metrics.sources,
      {
        trackerStatus: () => stateless.statusCounts(),
        queueLengths: () => stateless.queueLengths(),
        // Peers with a valid ping: what the cluster counts as up (Raft voters or CRDT peers).
        peers: () => peerMonitor.latestMetrics('ping').length,
        informerMetrics: function* () {
          for (const name of peerMonitor.metricNames()) yield* peerMonitor.latestMetrics(name)
        },
        raftStatus: raftNow ? () => raftNow.status() : undefined,
      } satisfies MetricSources,
    )
  }
  stack.push({ name: 'monitor', stop: () => peerMonitor.stop() })
  const informers: Informer[] = buildInformers(cfg, ipfs, tracker, ident.id)
  stack.push({
    name: 'informers',
    stop: async () => void await Promise.all(informers.map((i) => i.stop())),
  })

  const cluster = new Cluster({
    config: cfg.cluster,
    peerId: ident.id,
    consensus,
    tracker,
    ipfs,
    monitor: peerMonitor,
    informers,
    rpc: rpc.client,
    allocate: buildAllocate(cfg, peerMonitor, (p) => consensus.isTrustedPeer(p), log),
    addresses: () => host.addresses(),
    peerAddresses: async (peers) =>
      (await Promise.all(peers.map((p) => host.peerAddresses(p)))).flat(),
    bandwidth: () => host.bandwidth(),
    log,
  })
  triggerInformers = () => cluster.triggerInformers()
  // A peer that starts (or returns) hears every other peer's metrics at once, not after up to
  // half their TTL: each peer publishes its own when it sees a new subscriber.
  stack.push({
    name: 'metrics to new peers',
    stop: metricsTransport.onNewSubscriber(() => cluster.publishMetricsNow()),
  })
  Object.assign(
    handlers,
    rpcHandlers({
      cluster,
      tracker,
      ipfs,
      consensus,
      connectedPeers: () => host.libp2p.getPeers().map((p) => p.toString()),
    }),
  )
  stack.push({ name: 'cluster', stop: () => cluster.stop() })

  // Leaving on shutdown comes after the APIs stop and before consensus does (reference §5.8).
  // CRDT has no peerset to leave (its rmPeer refuses).
  const leave = !crdtCfg && (opts.leave || cfg.cluster.leave_on_shutdown)
  stack.push({
    name: 'leave',
    stop: async () => {
      if (!leave || !wasReady || departed) return
      log.info('leaving the cluster')
      await leaveCluster({
        self: ident.id,
        consensus,
        rpc: rpc.client,
        clock: systemClock,
        intervalMs: cfg.cluster.peer_watch_interval,
        signal: AbortSignal.timeout(raftCfg.wait_for_leader_timeout * 2),
        log,
      })
      departed = true
    },
  })

  const apis: API[] = []
  // What the REST API's and the IPFS proxy's adds go through: allocated, streamed to each
  // destination's IPFS over the cluster RPC (this peer's own without the wire).
  const add = contentAdder({
    self: ident.id,
    cluster,
    blockStream: (peer, blocks, signal) =>
      rpc.client.upload(peer, 'IPFSConnector.BlockStream', [], blocks, { signal }),
  })
  if (cfg.restapi) {
    const api = restApi(cfg.restapi, {
      cluster,
      configDir: opts.configDir,
      peerId: ident.id,
      add,
      log: opts.logging.get('restapi'),
      accessLog: opts.logging.get('restapilog'),
      foreground,
    })
    await api.start()
    apis.push(api)
    stack.push({ name: 'rest api', stop: () => api.stop() })
  }
  if (cfg.ipfsproxy) {
    // Kubo's RPC API beside Kubo: pins, adds and repo calls become the cluster's, the rest goes
    // to Kubo unchanged.
    const api = ipfsProxy(cfg.ipfsproxy, {
      cluster,
      add,
      resolve: (path, signal) => ipfs.resolve(path, signal),
      configDir: opts.configDir,
      version: cluster.version(),
      log: opts.logging.get('ipfsproxy'),
      accessLog: opts.logging.get('ipfsproxylog'),
      foreground,
    })
    await api.start()
    apis.push(api)
    stack.push({ name: 'ipfs proxy', stop: () => api.stop() })
  }
  if (cfg.pinsvcapi && requests) {
    const api = pinSvcApi(cfg.pinsvcapi, {
      cluster,
      index: requests,
      configDir: opts.configDir,
      log: opts.logging.get('pinsvcapi'),
      accessLog: opts.logging.get('pinsvcapilog'),
      foreground,
    })
    await api.start()
    apis.push(api)
    stack.push({ name: 'pinning service api', stop: () => api.stop() })
  }

  let stopped: Promise<void> | undefined
  const stop = () => {
    stopped ??= stopAll()
    return stopped
  }
  const watching = new AbortController()
  stack.push({ name: 'membership watch', stop: () => watching.abort() })
  const ended = Promise.withResolvers<{ code: number; reason: string }>()

  // A peer whose founders or members are not up yet keeps waiting for a leader, saying so once
  // per `wait_for_leader_timeout`, rather than giving up: the others may start later.
  const waitForLeader = async () => {
    for (;;) {
      try {
        return await consensus.ready(watching.signal)
      } catch (err) {
        if (!(err instanceof NoLeaderError) || watching.signal.aborted) throw err
        const peers = await consensus.peers().catch(() => [] as string[])
        const others = peers.filter((p) => p !== ident.id)
        // A peer that left or was removed starts fresh; its old members run on without it.
        const formerMember = plan?.kind === 'fresh' && !joining &&
          await exists(backupName(folder, 0))
        log.warn(
          `no Raft leader yet: waiting for a quorum of ${
            others.length ? `[${others.join(', ')}]` : 'the cluster (this peer is not a member yet)'
          }; check that those peers run, reach each other's cluster addresses and share the ` +
            `cluster secret` + (formerMember
              ? `; this peer left a cluster before (its old data is in ${
                backupName(folder, 0)
              }): to join it again, start with --bootstrap <a member's cluster address>`
              : ''),
        )
      }
    }
  }
  const ready = (async () => {
    if (crdtCfg) {
      // No join: the peers are dialled, and the replica learns their heads from the topic.
      await dialBootstrap(bootstrap, (addr, signal) => host.connect(addr, signal), log, watching)
      await consensus.ready(watching.signal)
    } else if (joining) {
      await join(bootstrap, {
        connect: (addr, signal) => host.connect(addr, signal),
        rpc: rpc.client,
        log,
        signal: watching.signal,
      })
    }
    if (!crdtCfg) await waitForLeader()
    await cluster.start()
    ipfsIdCache = cluster.ipfsId
    wasReady = true
    log.info('** IPFS Cluster is READY **')
  })()
  // A peer that cannot become ready (it could not join, its consensus failed) says why in one
  // line and stops, rather than serving an API in front of nothing.
  ready.catch(async (err) => {
    if (watching.signal.aborted) return // stopping: not a failure to start
    const reason = `error starting cluster: ${errorMessage(err)}`
    log.error(reason)
    await stop()
    ended.resolve({ code: 1, reason })
  })
  // Once ready (Raft): follow the peerset (departed members are no longer dialled) and stop when
  // this peer is no longer part of it.
  ready.then(async () => {
    if (crdtCfg) return
    const why = await watchRemoval({
      self: ident.id,
      consensus,
      rpc: rpc.client,
      clock: systemClock,
      intervalMs: cfg.cluster.peer_watch_interval,
      signal: watching.signal,
      onPeers: (_peers, gone) => {
        for (const p of gone) {
          log.info(`${p} is no longer a member: forgotten by this peer's host, not dialled`)
          void host.forget(p).catch(() => {})
        }
      },
      known: await host.knownPeers(),
      log,
    })
    departed = true
    log.warn(`${why}: shutting down; its Raft data is moved aside for a clean next start`)
    await stop()
    ended.resolve({ code: 0, reason: why })
  }).catch(() => {})

  return { cluster, config: cfg, apis, ready, ended: ended.promise, stop }
}

/**
 * Dials the `--bootstrap` peers of a CRDT peer, all at once; a peer that cannot be reached is
 * reported and skipped (the others, the peerstore and later dials may still connect it).
 */
async function dialBootstrap(
  addrs: string[],
  connect: (addr: string, signal: AbortSignal) => Promise<string>,
  log: Logger,
  stop: AbortController,
): Promise<void> {
  await Promise.all(addrs.map(async (addr) => {
    try {
      await connect(addr, stop.signal)
    } catch (err) {
      if (!stop.signal.aborted) log.warn(`bootstrap: ${errorMessage(err)}`)
    }
  }))
}

/** Builds (and, for the embedded node, starts) the configured IPFS connector of a peer. */
type ConnectorFactory = (
  opts: PeerOptions,
  triggerInformers: () => void,
) => Promise<IPFSConnector>

/**
 * Loads the module of the configured IPFS connector only: the embedded node's (Helia and its
 * libp2p stack, hundreds of npm packages) is imported when service.json asks for it, never for
 * the ipfshttp connector.
 */
async function loadConnector(cfg: ServiceConfig): Promise<ConnectorFactory> {
  const embedded = cfg.embedded
  if (embedded) {
    const { embeddedConnector } = await import('./ipfsconn/embedded/connector.ts')
    return async (opts) => {
      const ipfs = embeddedConnector(embedded, {
        configDir: opts.configDir,
        log: opts.logging.get('embedded'),
      })
      // Started here, not lazily: a busy swarm port is a start-up error (one line, exit 1), like
      // a busy API port, rather than a peer that serves without its IPFS node.
      try {
        await ipfs.ready()
      } catch (err) {
        await ipfs.stop()
        throw err
      }
      return ipfs
    }
  }
  return (_opts, triggerInformers) =>
    Promise.resolve(
      ipfsHttpConnector(cfg.ipfshttp ?? ipfsHttpSection.defaults(), { triggerInformers }),
    )
}

/** Options of runDaemon: a peer plus the process's signals. */
export interface RunOptions extends PeerOptions {
  signals?: (onSignal: (name: string) => void) => () => void
  /**
   * Told when the peer is ready and when a signal starts its shutdown: the service tells
   * systemd (READY=1, STOPPING=1), as the reference does.
   */
  onState?: (state: 'ready' | 'stopping') => void
}

/**
 * Runs a peer until SIGINT/SIGTERM/SIGHUP: the first signal shuts down gracefully, a second
 * warns, a third exits with 1. Returns the exit code.
 */
export async function runDaemon(opts: RunOptions): Promise<number> {
  const log = opts.logging.get('service')
  log.info('Initializing. For verbose output run with "-l debug". Please wait...')
  let count = 0
  let peer: Peer | undefined
  const done = Promise.withResolvers<number>()
  const shutDown = (p: Peer) => {
    opts.onState?.('stopping')
    return p.stop().then(() => done.resolve(0), () => done.resolve(1))
  }
  // Listening from the start: a signal while the peer starts (bootstrap dials can take a while)
  // stops it as soon as it is built, with its ordered shutdown.
  const off = opts.signals?.((name) => {
    count++
    if (count === 1) {
      log.info(`${name} received: shutting down`)
      if (peer) shutDown(peer)
    } else if (count === 2) {
      log.warn('shutdown in progress: send the signal again to exit at once')
    } else {
      done.resolve(1)
    }
  })
  try {
    peer = await startPeer(opts)
  } catch (err) {
    off?.()
    throw err
  }
  if (count > 0) shutDown(peer)
  peer.ready.then(() => opts.onState?.('ready'), () => {})
  // A removed peer stops on its own and exits with 0, as the reference's does; one that could
  // not start exits with 1.
  peer.ended.then(({ code }) => done.resolve(code))
  const code = await done.promise
  off?.()
  return code
}
