/**
 * Models from the Hugging Face Hub: `hubDownload(repo, file)` fetches into (or finds in) the
 * cache huggingface_hub shares with the other tools; `resolveHfPath("hf://ORG/NAME/FILE")`.
 * Node (and Deno/Bun with node: modules); not for browsers.
 */
export { hubDownload, resolveHfPath, parseHfUri, hubFileUrl, splitParts, DEFAULT_ENDPOINT, type HubDownload, type HubDownloadOptions, type HubProgress } from "./download.js";
export { hubCacheDir, hfHome, hubToken, repoFolder } from "./cache.js";
export { HubError, HubAuthError, HubNotFoundError, HubNetworkError, HubChecksumError, HubOfflineError } from "./errors.js";
