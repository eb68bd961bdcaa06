import { ZhLlamaError } from "../errors.js";

/** Something went wrong talking to the Hugging Face Hub (or HF_ENDPOINT). */
export class HubError extends ZhLlamaError {}

/** 401 / 403: no token, a wrong token, or a gated repository whose terms were not accepted. */
export class HubAuthError extends HubError {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** 404: no such repository, revision or file. */
export class HubNotFoundError extends HubError {}

/** The hub could not be reached, or the connection failed part-way and retries ran out. */
export class HubNetworkError extends HubError {}

/** The bytes received do not hash to the sha256 the hub announced; nothing was kept. */
export class HubChecksumError extends HubError {}

/** HF_HUB_OFFLINE is set (or the hub is unreachable) and the file is not in the cache. */
export class HubOfflineError extends HubError {}
