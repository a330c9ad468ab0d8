/**
 * systemd's readiness protocol (sd_notify(3)): under a `Type=notify` unit, systemd sets
 * NOTIFY_SOCKET to a unix datagram socket and waits for `READY=1` before it counts the service as
 * started (and before units ordered after it start); `STOPPING=1` says a shutdown has begun. The
 * reference sends READY=1 when its peer is ready (go-systemd's SdNotify); this peer does too, and
 * STOPPING=1 when a signal starts its shutdown.
 *
 * Deno can send a datagram to a socket path only through `Deno.listenDatagram({ transport:
 * 'unixpacket' })`, an unstable API (`--unstable-net`), from a socket bound to a path of its own
 * (a temporary folder here). It cannot address Linux's abstract sockets (`@name`: the path holds a
 * NUL byte, which Deno refuses with EINVAL), so a NOTIFY_SOCKET of that kind, or a Deno without
 * `--unstable-net`, gets one warning that says so instead of a silent start-up timeout.
 *
 * @example
 * ```ts
 * const notify = systemdNotifier(Deno.env.toObject(), (m) => console.error(m))
 * await notify?.('READY=1')
 * ```
 */

/** Where NOTIFY_SOCKET points: a socket path, or why this peer cannot notify there. */
export type NotifyTarget = { path: string } | { unsupported: string }

/**
 * Reads NOTIFY_SOCKET. Undefined when it is unset or empty (not started by systemd with
 * `Type=notify`): nothing to notify.
 *
 * @example
 * ```ts
 * notifyTarget('/run/systemd/notify') // { path: '/run/systemd/notify' }
 * notifyTarget('@/org/freedesktop/systemd1/notify') // { unsupported: '…abstract…' }
 * ```
 */
export function notifyTarget(value: string | undefined): NotifyTarget | undefined {
  if (!value) return undefined
  if (value.startsWith('/')) return { path: value }
  if (value.startsWith('@')) {
    return {
      unsupported: `NOTIFY_SOCKET=${value} is an abstract unix socket, which Deno cannot send ` +
        'to: systemd is not told that the peer is ready (run the unit with a socket path)',
    }
  }
  return {
    unsupported: `NOTIFY_SOCKET=${value} is neither a socket path nor an abstract socket: ` +
      'systemd is not told that the peer is ready',
  }
}

/** The part of Deno's unstable datagram API this module uses. */
interface DatagramApi {
  listenDatagram(
    opts: { transport: 'unixpacket'; path: string },
  ): {
    send(data: Uint8Array, addr: { transport: 'unixpacket'; path: string }): Promise<number>
    close(): void
  }
}

/** Sends one state string to systemd; never throws (a failure is reported through `warn`). */
export type Notify = (state: string) => Promise<void>

/**
 * A notifier for the NOTIFY_SOCKET in `env`, or undefined when systemd did not ask for one.
 * Each message goes out from a socket bound in a fresh temporary folder, removed afterwards: a
 * peer sends two messages in its life, so nothing stays open or on disk between them.
 */
export function systemdNotifier(
  env: Record<string, string | undefined>,
  warn: (message: string) => void,
): Notify | undefined {
  const target = notifyTarget(env.NOTIFY_SOCKET)
  if (!target) return undefined
  const api = Deno as unknown as Partial<DatagramApi>
  const problem = 'unsupported' in target
    ? target.unsupported
    : typeof api.listenDatagram !== 'function'
    ? `NOTIFY_SOCKET is set but this Deno runs without --unstable-net, which sending to it ` +
      'needs: systemd is not told that the peer is ready (add --unstable-net to ExecStart)'
    : undefined
  if (problem || !('path' in target)) {
    let warned = false
    return (_state) => {
      if (!warned) warn(problem ?? 'NOTIFY_SOCKET unusable')
      warned = true
      return Promise.resolve()
    }
  }
  const listen = api.listenDatagram!.bind(Deno)
  return async (state) => {
    let dir: string | undefined
    try {
      dir = await Deno.makeTempDir({ prefix: 'ipfs-cluster-notify-' })
      const conn = listen({ transport: 'unixpacket', path: `${dir}/s` })
      try {
        await conn.send(new TextEncoder().encode(state), {
          transport: 'unixpacket',
          path: target.path,
        })
      } finally {
        conn.close()
      }
    } catch (err) {
      warn(`notifying systemd (${state}) at ${target.path}: ${(err as Error).message ?? err}`)
    } finally {
      if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {})
    }
  }
}
