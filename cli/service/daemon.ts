/**
 * `ipfs-cluster-service daemon`: runs the peer of the config folder (first writing a default
 * configuration with `--init`) until SIGINT/SIGTERM/SIGHUP.
 *
 * @example
 * ```ts
 * const code = await daemon(parseFlags(DAEMON.flags!, ['--init']), ctx)
 * ```
 */
import { join } from 'node:path'
import { logging } from '../../src/util/log.ts'
import type { ParsedFlags } from '../flags.ts'
import { type Ctx, doing } from './context.ts'
import { parsePeerMultiaddr } from '../../src/config/peer_multiaddr.ts'
import { initConfig } from './init.ts'
import { exists } from '../../src/util/fs.ts'
import { systemdNotifier } from './sd_notify.ts'

/** `daemon` with its parsed flags: runs the peer until a signal; resolves to the exit code. */
export async function daemon(f: ParsedFlags, ctx: Ctx): Promise<number> {
  // Checked before anything starts: a bad address is one line, as at init.
  const raw = f.string('bootstrap')
  const bootstrap = raw === '' ? [] : raw.split(',').map((s) => {
    const a = s.trim()
    try {
      return parsePeerMultiaddr(a).addr
    } catch (err) {
      throw doing(`parsing bootstrap multiaddress: ${a}`, err)
    }
  })
  // The peer's modules load while init (if asked) writes the folder.
  const peerModule = import('../../src/daemon.ts')
  peerModule.catch(() => {}) // awaited below
  if (f.bool('init') && !(await exists(join(ctx.configDir, 'service.json')))) {
    const code = await initConfig(ctx, {
      force: true,
      randomPorts: false,
      peers: [],
      ipfs: 'embedded',
      consensus: 'raft',
    })
    if (code !== 0) return code
  }
  const { runDaemon } = await peerModule
  const logs = logging(ctx.logLevel)
  // Under a systemd `Type=notify` unit: READY=1 once the peer is ready, STOPPING=1 on a signal.
  const notify = systemdNotifier(ctx.env, (m) => logs.get('service').warn(m))
  return await runDaemon({
    configDir: ctx.configDir,
    env: ctx.env,
    logging: logs,
    leave: f.bool('leave'),
    bootstrap,
    noTrust: f.bool('no-trust'),
    stats: f.bool('stats'),
    tracing: f.bool('tracing'),
    signals: ctx.io.signals,
    onState: notify && ((state) => void notify(state === 'ready' ? 'READY=1' : 'STOPPING=1')),
  })
}
