import { IpcErrorCode } from '../../../shared/ipc/errors';
import { IpcError } from '../../ipc/errors';

/** Where a failed AWS call happened, for a message the admin can act on. */
export interface AwsCallContext {
  /** The IAM action the call needs, e.g. "ec2:StartInstances". */
  action: string;
  account: string;
  region: string;
  /** The profile the credentials come from, for `aws sso login --profile …`. */
  profile?: string | null;
}

const CREDENTIAL_CODES = new Set([
  'AuthFailure',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignature',
  'InvalidAccessKeyId',
  'MissingAuthenticationToken',
]);
const EXPIRED_CODES = new Set(['ExpiredToken', 'ExpiredTokenException', 'TokenRefreshRequired']);
const UNAUTHORIZED_CODES = new Set(['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException']);
const THROTTLE_CODES = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
]);
const NOT_FOUND = /(NotFound|\.Malformed)$|^ParameterNotFound$/;
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
]);

interface SdkError extends Error {
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: 'client' | 'server';
  cause?: unknown;
}

/** The network error code under an SDK error, if the request never got an answer. */
function networkCode(error: SdkError): string | null {
  for (let current: unknown = error, depth = 0; current && depth < 4; depth++) {
    const code = (current as SdkError).code;
    if (code && NETWORK_CODES.has(code)) return code;
    current = (current as SdkError).cause;
  }
  if (error.name === 'TimeoutError' && !error.$metadata?.httpStatusCode) return 'timeout';
  return null;
}

/**
 * An AWS SDK error as the panel's error: a stable code and a message saying what to do next. Nothing secret is in an
 * SDK error's name or message (AWS never echoes the secret key), so the message may quote AWS's own words.
 */
export function awsError(error: unknown, context: AwsCallContext): IpcError {
  if (error instanceof IpcError) return error;
  const sdk = error as SdkError;
  const code = sdk.name ?? 'Error';
  const where = `${context.account} (${context.region})`;
  if (code === 'AbortError') return new IpcError(IpcErrorCode.IPC_CANCELLED, 'Cancelled.');
  if (UNAUTHORIZED_CODES.has(code)) {
    // AWS names the action it refused ("…is not authorized to perform: ec2:StartInstances…"); else we know ours.
    const action = /perform: ([a-z0-9-]+:[A-Za-z0-9]+)/.exec(sdk.message)?.[1] ?? context.action;
    return new IpcError(
      IpcErrorCode.AWS_UNAUTHORIZED,
      `The AWS credentials of ${where} may not call ${action}. Allow "${action}" in the IAM policy of that user or role (the docs list the whole policy Slotdeck needs).`,
      { action, region: context.region },
    );
  }
  if (code === 'IncorrectInstanceState')
    return new IpcError(IpcErrorCode.AWS_INSTANCE_STATE, `${sdk.message} Refresh the list and try again.`, {
      region: context.region,
    });
  if (THROTTLE_CODES.has(code))
    return new IpcError(
      IpcErrorCode.AWS_THROTTLED,
      `AWS is limiting the API calls of ${where} (${code}, still refused after retrying). Wait a minute and try again.`,
      { action: context.action },
    );
  if (CREDENTIAL_CODES.has(code))
    return new IpcError(
      IpcErrorCode.AWS_CREDENTIALS_INVALID,
      `AWS did not accept the credentials of ${where} (${code}). Check the access key (or the profile's), and that the key is still active in IAM.`,
    );
  if (EXPIRED_CODES.has(code))
    return new IpcError(
      IpcErrorCode.AWS_CREDENTIALS_INVALID,
      `The credentials of ${where} have expired (${code}). ${signInAgain(context.profile)}`,
    );
  if (code === 'CredentialsProviderError' || code === 'ProviderError' || code === 'TokenProviderError') {
    const sso = /sso/i.test(sdk.message);
    return new IpcError(
      IpcErrorCode.AWS_CREDENTIALS_MISSING,
      sso
        ? `The SSO sign-in of ${where} is missing or has expired. ${signInAgain(context.profile)}`
        : `No AWS credentials could be found for ${where} (${sdk.message}). Check the profile in ~/.aws/config and ~/.aws/credentials, or paste an access key.`,
    );
  }
  if (NOT_FOUND.test(code))
    return new IpcError(IpcErrorCode.AWS_NOT_FOUND, `${sdk.message || code} in ${where}. Refresh and try again.`, {
      awsCode: code,
    });
  const network = networkCode(sdk);
  if (network)
    return new IpcError(
      IpcErrorCode.AWS_UNREACHABLE,
      `Could not reach AWS in ${context.region} (${network}). Check this computer's network connection (and its proxy), then try again.`,
    );
  if (code === 'OptInRequired')
    return new IpcError(
      IpcErrorCode.AWS_FAILED,
      `${where}: the region is not enabled for this account (OptInRequired). Enable it in the AWS console or remove it from the account's regions.`,
    );
  return new IpcError(
    IpcErrorCode.AWS_FAILED,
    `AWS refused ${context.action} in ${where}: ${code}${sdk.message && sdk.message !== code ? `: ${sdk.message}` : ''}.`,
    { awsCode: code },
  );
}

function signInAgain(profile: string | null | undefined): string {
  return profile
    ? `Sign in again (aws sso login --profile ${profile}, or renew the profile's keys), then retry.`
    : 'Paste a fresh access key in the account settings, then retry.';
}
