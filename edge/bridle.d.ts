// Types for edge/bridle.mjs. Checked by `tsc` in edge/tests/types.test.mjs.

/** What the core decided. */
export type Outcome =
  | "allow"
  | "deny"
  | "approval_required"
  | "unauthenticated"
  | "bad_request"
  | "payload_too_large"
  | "unsupported_media_type"
  | "error"
  | "unavailable";

/** A header as a name/value pair (names are lower case). */
export type Header = [name: string, value: string];

/** The audit event for one decision (the same JSON the proxy-wasm filter logs; never a token). */
export interface AuditEvent {
  kind: string;
  decision_id: string;
  time: string;
  outcome: Outcome;
  status: number;
  reasons: string[];
  [field: string]: unknown;
}

/** A decision: forward (`forward`) or refuse with `status` and the JSON `body`. */
export interface Decided {
  decision: Outcome;
  status: number;
  /** Whether to forward upstream (an allow, or any outcome in dry-run mode). */
  forward: boolean;
  dry_run: boolean;
  reasons: string[];
  decision_id: string;
  headers: {
    /** Set on the forwarded request (policy headers and the decision id). */
    upstream: Header[];
    /** Remove from the forwarded request (the credential, unless configured otherwise). */
    remove: string[];
    /** Set on the response to the caller, forwarded or refused. */
    response: Header[];
  };
  /** The refusal's JSON body (`{error, reasons, decision_id}`), or null when forwarding. */
  body: string | null;
  audit: AuditEvent | null;
  error?: never;
}

/** No decision could be made (a malformed request view, a body that cannot be read). */
export interface Failed {
  error: { message: string };
  decision?: never;
}

export type Answer = Decided | Failed;

/** What `decide` reads: a Web `Request`, or a plain object with the same parts. */
export type RequestLike =
  | Request
  | {
      method: string;
      url: string;
      headers?: HeadersInit;
      body?: string | ArrayBuffer | ArrayBufferView | null;
    };

export interface AuthorizerOptions {
  /**
   * Verify new tokens' signatures with Web Crypto (default `true`). The core still makes
   * every other check and chooses the key; an algorithm the runtime lacks falls back to the
   * core's own verification.
   */
  nativeSignatures?: boolean;
}

export interface DecideOptions {
  /** The caller's mTLS URI SAN, when the runtime exposes it. */
  peerUriSan?: string;
}

export interface GuardOptions extends DecideOptions {
  /** Forward to this origin instead of the request's own. */
  origin?: string | URL;
}

/** Instantiates the module once per isolate from a compiled `WebAssembly.Module` or its bytes. */
export function initBridle(module: WebAssembly.Module | BufferSource): void;

/** Instantiates the module from a URL, Response or bytes (default: the .wasm beside the glue). */
export function loadBridle(
  source?: string | URL | Request | Response | BufferSource | WebAssembly.Module | Promise<Response>,
): Promise<void>;

export class Authorizer {
  /** Compiles a configuration (object or JSON); throws an `Error` naming a bad field. */
  constructor(config: string | object, options?: AuthorizerOptions);
  /** Decides on a request with the runtime's clock; never throws. */
  decide(request: RequestLike, options?: DecideOptions): Promise<Answer>;
  /** Refuses, or forwards with `fetchUpstream` (default `fetch`) and returns the upstream's response. */
  guard(
    request: Request,
    fetchUpstream?: (request: Request) => Promise<Response> | Response,
    options?: GuardOptions,
  ): Promise<Response>;
  /** The refusal Response for an answer (503 for `{error}`). */
  static refusal(answer: Answer): Response;
  /** The request to forward: credential removed, policy and decision headers set. Throws unless `answer.forward`. */
  static upstreamRequest(request: Request, answer: Answer, origin?: string | URL): Request;
  /** Frees the module memory this authorizer holds. */
  free(): void;
}
