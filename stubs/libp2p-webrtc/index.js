// A stand-in for @libp2p/webrtc 6.0.33, linked in deno.json ("links"). The libp2p nodes of this
// project (the cluster host and the embedded IPFS node) never use WebRTC, yet @helia/libp2p
// imports @libp2p/webrtc for its defaults, and the real package brings react-native-webrtc
// (about 200 npm packages) and node-datachannel (a native addon that needs --allow-ffi) into every
// install and every start. The two factories keep their names so that those imports resolve; a
// libp2p node configured with one of them fails to start, saying why.

function unavailable(name) {
  return () => {
    throw new Error(`${name}() is not available: @libp2p/webrtc is a stub in this project`)
  }
}

/** Stand-in for the WebRTC transport: fails when a node starts with it. */
export function webRTC(_init) {
  return unavailable('webRTC')
}

/** Stand-in for the WebRTC-direct transport: fails when a node starts with it. */
export function webRTCDirect(_init) {
  return unavailable('webRTCDirect')
}
