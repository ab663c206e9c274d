import { describe, expect, it } from 'vitest';
import { awsError } from '../../../../src/main/services/aws/errors';

const context = { action: 'ec2:StartInstances', account: 'Work', region: 'eu-west-1', profile: 'work-sso' };

/** An error shaped as the SDK throws them: the AWS code as its name, the HTTP status in $metadata. */
function sdkError(name: string, message: string, status?: number): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: 'client',
    ...(status ? { $metadata: { httpStatusCode: status } } : {}),
  });
}

describe('awsError', () => {
  it('names the IAM action AWS refused, read from its message when it says it', () => {
    const error = awsError(
      sdkError(
        'UnauthorizedOperation',
        'You are not authorized to perform this operation. User: arn:aws:iam::1:user/x is not authorized to perform: ec2:DescribeInstanceStatus because no identity-based policy allows it. Encoded authorization failure message: abc',
        403,
      ),
      context,
    );
    expect(error.code).toBe('AWS_UNAUTHORIZED');
    expect(error.details?.action).toBe('ec2:DescribeInstanceStatus');
    expect(error.message).toContain('Allow "ec2:DescribeInstanceStatus"');
  });

  it('falls back to the action of the call when AWS does not name one', () => {
    const error = awsError(
      sdkError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403),
      context,
    );
    expect(error.details?.action).toBe('ec2:StartInstances');
  });

  it('maps throttling, bad and expired credentials, missing ones and SSO sign-ins', () => {
    expect(awsError(sdkError('RequestLimitExceeded', 'Request limit exceeded.', 503), context).code).toBe(
      'AWS_THROTTLED',
    );
    expect(awsError(sdkError('AuthFailure', 'AWS was not able to validate', 401), context).code).toBe(
      'AWS_CREDENTIALS_INVALID',
    );
    const expired = awsError(
      sdkError('ExpiredToken', 'The security token included in the request is expired', 400),
      context,
    );
    expect(expired.code).toBe('AWS_CREDENTIALS_INVALID');
    expect(expired.message).toContain('aws sso login --profile work-sso');
    const sso = awsError(
      sdkError('CredentialsProviderError', 'The SSO session associated with this profile has expired'),
      context,
    );
    expect(sso.code).toBe('AWS_CREDENTIALS_MISSING');
    expect(sso.message).toContain('aws sso login --profile work-sso');
    expect(
      awsError(sdkError('CredentialsProviderError', 'Could not resolve credentials using profile: [x]'), context).code,
    ).toBe('AWS_CREDENTIALS_MISSING');
  });

  it('maps unknown ids to AWS_NOT_FOUND and a refused connection to AWS_UNREACHABLE', () => {
    expect(
      awsError(sdkError('InvalidInstanceID.NotFound', "The instance ID 'i-1' does not exist", 400), context).code,
    ).toBe('AWS_NOT_FOUND');
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const network = awsError(Object.assign(new Error('socket hang up'), { cause: refused }), context);
    expect(network.code).toBe('AWS_UNREACHABLE');
    expect(network.message).toContain('ECONNREFUSED');
  });

  it('keeps AWS own words for anything else', () => {
    const error = awsError(
      sdkError('InsufficientInstanceCapacity', 'We currently do not have sufficient t4g.medium capacity', 500),
      context,
    );
    expect(error.code).toBe('AWS_FAILED');
    expect(error.message).toContain('InsufficientInstanceCapacity');
    expect(error.message).toContain('sufficient t4g.medium capacity');
  });
});
