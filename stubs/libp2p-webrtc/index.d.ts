/** Stand-in for the WebRTC transport: fails when a node starts with it. */
export declare function webRTC(init?: unknown): (components: unknown) => never
/** Stand-in for the WebRTC-direct transport: fails when a node starts with it. */
export declare function webRTCDirect(init?: unknown): (components: unknown) => never
