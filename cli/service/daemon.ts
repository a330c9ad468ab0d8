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
import type { Ctx } from './context.ts'
import { exists, initConfig } from './init.ts'

/** `daemon` with its parsed flags: runs the peer until a signal; resolves to the exit code. */
export async function daemon(f: ParsedFlags, ctx: Ctx): Promise<number> {
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
  return await runDaemon({
    configDir: ctx.configDir,
    env: ctx.env,
    logging: logging(ctx.logLevel),
    leave: f.bool('leave'),
    bootstrap: f.string('bootstrap').split(',').map((s) => s.trim()).filter(Boolean),
    signals: ctx.io.signals,
  })
}
