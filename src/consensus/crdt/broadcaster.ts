/**
 * go-ds-crdt's PubSubBroadcaster on the cluster host's gossipsub (net/pubsub.ts): heads go out as
 * the raw data of messages on the cluster's CRDT topic (crdt-interop.md §1.1, §1.2), and come in
 * only from trusted authors.
 *
 * The trust gate is a gossipsub topic validator, as IPFS Cluster 1.1.6 registers one
 * (`consensus/crdt/consensus.go:188-203`): a message whose author (`from`, the signer, not the
 * peer that forwarded it) is not trusted is rejected, so it is neither delivered here nor
 * forwarded to the rest of the mesh. Gossipsub already refuses unsigned messages (StrictSign).
 *
 * Received payloads wait in a bounded queue per `messages()` reader; when a reader falls behind
 * by more than `queueLimit` payloads the oldest are dropped with a warning (Go's subscription
 * drops too: heads come again with the next rebroadcast).
 *
 * @example
 * ```ts
 * const bc = pubsubBroadcaster({ pubsub: host.pubsub, topic: topicName('ipfs-cluster'), isTrusted })
 * await bc.broadcast(encodeBroadcast([head]))
 * for await (const { from, data } of bc.messages(signal)) handle(from, data)
 * await bc.stop()
 * ```
 *
 * @module
 */
import { type Message, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import type { GossipSub } from '../../net/pubsub.ts'
import { type Logger, nullLogger } from '../../util/log.ts'
import { ShutdownError } from '../../errors.ts'
import type { Broadcaster } from './types.ts'

/** What the broadcaster is built from. */
export interface PubsubBroadcasterOptions {
  /** The cluster host's gossipsub (`host.pubsub`). */
  pubsub: GossipSub
  /** The CRDT topic (`topicName(consensus.crdt.cluster_name)`). */
  topic: string
  /** Whether a message authored by this peer ID is taken (`consensus.crdt.trusted_peers`). */
  isTrusted: (peerId: string) => boolean
  log?: Logger
  /** Payloads one reader may have waiting before the oldest are dropped; default 1024. */
  queueLimit?: number
}

/** A broadcaster with a lifetime: `stop()` leaves the topic and drops the validator. */
export interface PubsubBroadcaster extends Broadcaster {
  /** Counts since the start: payloads published, delivered to readers, rejected by the trust gate. */
  stats(): { sent: number; received: number; rejected: number; dropped: number }
  /** Unsubscribes, removes the validator, ends every `messages()` reader. Idempotent. */
  stop(): Promise<void>
}

/**
 * Joins the topic (subscribes and registers the trust validator) and returns the broadcaster.
 *
 * @example
 * ```ts
 * const bc = pubsubBroadcaster({ pubsub, topic: 'fzhnp2UwTBkgNabrJi1VanzwgN', isTrusted: () => true })
 * ```
 */
export function pubsubBroadcaster(opts: PubsubBroadcasterOptions): PubsubBroadcaster {
  const { pubsub, topic, isTrusted } = opts
  const log = opts.log ?? nullLogger
  const queueLimit = opts.queueLimit ?? 1024
  const counts = { sent: 0, received: 0, rejected: 0, dropped: 0 }
  const readers = new Set<Reader>()
  let stopped = false

  const validator = (_propagationSource: PeerId, msg: Message): TopicValidatorResult => {
    if (msg.type !== 'signed') {
      counts.rejected++
      return TopicValidatorResult.Reject
    }
    const author = msg.from.toString()
    let trusted = false
    try {
      trusted = isTrusted(author)
    } catch (err) {
      log.warn(`crdt: trust check of ${author} failed, message rejected: ${err}`)
    }
    if (!trusted) {
      counts.rejected++
      log.debug(`crdt: rejected a broadcast authored by untrusted peer ${author}`)
      return TopicValidatorResult.Reject
    }
    return TopicValidatorResult.Accept
  }

  const onMessage = (evt: CustomEvent<Message>) => {
    const msg = evt.detail
    // The validator let only signed messages of trusted authors through.
    if (msg.topic !== topic || msg.type !== 'signed') return
    counts.received++
    const item = { from: msg.from.toString(), data: msg.data }
    for (const r of readers) r.push(item)
  }

  pubsub.topicValidators.set(topic, validator)
  pubsub.addEventListener('message', onMessage)
  pubsub.subscribe(topic)

  return {
    async broadcast(data, signal) {
      if (stopped) throw new ShutdownError('crdt broadcaster is stopped')
      signal?.throwIfAborted()
      await pubsub.publish(topic, data)
      counts.sent++
    },

    messages(signal) {
      const r = reader(queueLimit, () => {
        counts.dropped++
        log.warn(`crdt: a broadcast reader fell ${queueLimit} payloads behind; oldest dropped`)
      })
      if (stopped) r.end()
      else readers.add(r)
      return r.iterate(signal, () => readers.delete(r))
    },

    stats: () => ({ ...counts }),

    stop() {
      if (stopped) return Promise.resolve()
      stopped = true
      pubsub.removeEventListener('message', onMessage)
      if (pubsub.topicValidators.get(topic) === validator) pubsub.topicValidators.delete(topic)
      try {
        pubsub.unsubscribe(topic)
      } catch {
        // the host stopped first
      }
      for (const r of readers) r.end()
      readers.clear()
      return Promise.resolve()
    },
  }
}

type Item = { from: string; data: Uint8Array }

interface Reader {
  push(item: Item): void
  end(): void
  iterate(signal: AbortSignal, done: () => void): AsyncIterable<Item>
}

/** One `messages()` reader: a bounded queue and a waker. */
function reader(limit: number, onDrop: () => void): Reader {
  const queue: Item[] = []
  let ended = false
  let wake: (() => void) | undefined
  const notify = () => {
    const w = wake
    wake = undefined
    w?.()
  }
  return {
    push(item) {
      if (ended) return
      queue.push(item)
      if (queue.length > limit) {
        queue.shift()
        onDrop()
      }
      notify()
    },
    end() {
      ended = true
      notify()
    },
    async *iterate(signal, done) {
      const onAbort = () => notify()
      signal.addEventListener('abort', onAbort)
      try {
        while (!signal.aborted) {
          const item = queue.shift()
          if (item) {
            yield item
            continue
          }
          if (ended) return
          await new Promise<void>((resolve) => wake = resolve)
        }
      } finally {
        signal.removeEventListener('abort', onAbort)
        ended = true
        done()
      }
    },
  }
}
