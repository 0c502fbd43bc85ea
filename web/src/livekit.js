// The dev page's one bundle: the unmodified livekit-client, exposed to the page's own script as `LivekitClient`.
export * from "livekit-client";
