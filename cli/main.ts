/**
 * The one entry point. `main.ts service <cmd>` behaves as `ipfs-cluster-service <cmd>`,
 * `main.ts ctl <cmd>` as `ipfs-cluster-ctl <cmd>` and `main.ts follow <args>` as
 * `ipfs-cluster-follow <args>`. A compiled binary invoked through a link named
 * `ipfs-cluster-service`, `ipfs-cluster-ctl` or `ipfs-cluster-follow` picks that mode by itself
 * (from argv[0]).
 *
 * @example
 * ```sh
 * deno run -A cli/main.ts service init --ipfs embedded
 * deno run -A cli/main.ts ctl pin add bafy…
 * ```
 */
import '../src/deno_shim.ts'
import { basename } from 'node:path'
import { stdio } from './io.ts'
import { flushLogs } from '../src/util/log.ts'

/** The name the program was invoked as (argv[0]), read from /proc when permitted. */
function invokedAs(): string {
  try {
    const cmdline = Deno.readTextFileSync('/proc/self/cmdline')
    return basename(cmdline.split('\0')[0] ?? '')
  } catch {
    return basename(Deno.execPath())
  }
}

/** Picks the mode from argv[0] or the first argument and runs it; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const io = stdio()
  const name = invokedAs().replace(/\.exe$/, '')
  let mode: string | undefined
  let rest = args
  if (name === 'ipfs-cluster-service' || name === 'ipfs-cluster-ctl') {
    mode = name === 'ipfs-cluster-service' ? 'service' : 'ctl'
  } else if (name === 'ipfs-cluster-follow') {
    mode = 'follow'
  } else {
    ;[mode, ...rest] = args
  }
  if (mode === 'service') {
    const { serviceMain } = await import('./service/main.ts')
    return await serviceMain(rest, io)
  }
  if (mode === 'ctl') {
    const { ctlMain } = await import('./ctl/main.ts')
    return await ctlMain(rest, {
      stdout: io.stdout,
      stderr: io.stderr,
      env: io.env,
      stderrIsTerminal: io.stderrIsTerminal,
    })
  }
  if (mode === 'follow') {
    const { followMain } = await import('./follow/main.ts')
    return await followMain(rest, io)
  }
  await io.stderr(
    'usage: ipfs-cluster <service|ctl|follow> [arguments...]\n' +
      '  service  runs ipfs-cluster-service (the peer daemon)\n' +
      '  ctl      runs ipfs-cluster-ctl (the client)\n' +
      '  follow   runs ipfs-cluster-follow (follower peers of CRDT clusters)\n',
  )
  return mode === undefined ? 1 : 1
}

if (import.meta.main) {
  // A Helia node keeps Deno's event loop alive after stop(), and a stray rejection inside
  // libp2p/Helia must not kill a peer: log it and keep serving.
  globalThis.addEventListener('unhandledrejection', (e) => {
    e.preventDefault()
    console.error(`unhandled rejection: ${e.reason instanceof Error ? e.reason.stack : e.reason}`)
  })
  // The same for an exception thrown in a libp2p event listener or timer (seen: `Uncaught null`
  // after a connection's encryption failed mid-transfer): one connection's fault, not the peer's.
  globalThis.addEventListener('error', (e) => {
    e.preventDefault()
    console.error(`uncaught exception: ${e.error instanceof Error ? e.error.stack : e.error}`)
  })
  const code = await main(Deno.args)
  flushLogs()
  Deno.exit(code)
}
