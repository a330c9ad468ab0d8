/**
 * Listener failures as one line: the config key, the address, the cause in words and what to do
 * (listen_error.ts), for the HTTP APIs and for a libp2p host built on the real TCP transport.
 */
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ListenError, listenError } from '../../src/net/listen_error.ts'
import { startHost } from '../../src/net/host.ts'

Deno.test('listenError: the common causes get advice, others their first line', () => {
  const key = 'api.restapi.http_listen_multiaddress'
  const addr = '/ip4/127.0.0.1/tcp/9094'
  const inUse = Object.assign(new Error('Address already in use (os error 98)'), {
    code: 'EADDRINUSE',
  })
  const e = listenError(key, addr, inUse)
  assert.ok(e instanceof ListenError)
  assert.equal(e.key, key)
  assert.equal(e.address, addr)
  assert.equal(e.code, 'EADDRINUSE')
  assert.equal(
    e.message,
    `cannot listen on ${addr} (${key}): address already in use; stop the program using it or ` +
      'set another address in service.json',
  )
  assert.match(
    listenError(key, addr, Object.assign(new Error('x'), { code: 'EACCES' })).message,
    /: permission denied \(ports below 1024 need privileges\); use another port in service\.json$/,
  )
  assert.match(
    listenError(
      key,
      '/ip4/10.9.9.9/tcp/1',
      Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL' }),
    )
      .message,
    /no interface of this machine has that IP address/,
  )
  const odd = new Error('something odd\n    at frame (file.ts:1:1)')
  assert.equal(
    listenError(key, addr, odd).message,
    `cannot listen on ${addr} (${key}): something odd; check the address in service.json`,
  )
})

Deno.test('startHost: a cluster address in use fails with a ListenError naming cluster.listen_multiaddress', async () => {
  const blocker = Deno.listen({ hostname: '127.0.0.1', port: 0 })
  const { port } = blocker.addr as Deno.NetAddr
  try {
    const err = await startHost({
      privateKey: await generateKeyPair('Ed25519'),
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
      secret: '',
    }).then(() => undefined, (e) => e)
    assert.ok(err instanceof ListenError, String(err))
    assert.equal(
      err.message,
      `cannot listen on /ip4/127.0.0.1/tcp/${port} (cluster.listen_multiaddress): address ` +
        'already in use; stop the program using it or set another address in service.json',
    )
  } finally {
    blocker.close()
  }
})

Deno.test('startHost: free addresses still listen through the wrapped transport', async () => {
  const host = await startHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    secret: '',
  })
  try {
    assert.match(host.addresses()[0], /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
  } finally {
    await host.stop()
  }
})
