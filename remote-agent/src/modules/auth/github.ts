import { createAuthorizationURL, validateAuthorizationCode } from 'better-auth/oauth2';

export interface GithubEndpoints {
  /** https://github.com (tests: a local stand-in). */
  webUrl: string;
  /** https://api.github.com */
  apiUrl: string;
}

interface GithubProfile {
  id: number;
  login: string;
  name?: string | null;
  avatar_url?: string;
}
interface GithubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

/** Where a GitHub user without a verified email gets an address that matches nobody (auth_user.email is required). */
export const githubPlaceholderEmail = (githubId: number): string => `github-${githubId}@users.slotdeck.invalid`;

async function getJson<T>(url: string, accessToken: string): Promise<T | null> {
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${accessToken}`, 'user-agent': 'slotdeck-agent', accept: 'application/json' },
    redirect: 'error',
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) return null;
  return (await response.json()) as T;
}

/**
 * better-auth's GitHub provider with configurable endpoints (its own has github.com's built in) and stricter
 * rules: the account key is GitHub's numeric user id, and an email counts only when GitHub says it is verified
 * (else the user gets a placeholder address that matches no one).
 */
export function githubProvider(
  config: { clientId: string; clientSecret: string; signUp: boolean },
  endpoints: GithubEndpoints,
) {
  // Without sign-up, an unlinked GitHub account is refused before any user is made (our user hook refuses too).
  const options = { clientId: config.clientId, clientSecret: config.clientSecret, disableSignUp: !config.signUp };
  const tokenEndpoint = `${endpoints.webUrl}/login/oauth/access_token`;
  return {
    id: 'github',
    name: 'GitHub',
    accountSubject: ({ profile }: { profile: GithubProfile }) => profile.id,
    // PKCE (S256): better-auth makes a verifier per sign-in and keeps it with the state; GitHub checks it.
    createAuthorizationURL({
      state,
      redirectURI,
      codeVerifier,
    }: {
      state: string;
      redirectURI: string;
      codeVerifier?: string;
    }) {
      return createAuthorizationURL({
        id: 'github',
        options,
        authorizationEndpoint: `${endpoints.webUrl}/login/oauth/authorize`,
        // read:user for the id and login, user:email for the verified flags.
        scopes: ['read:user', 'user:email'],
        state,
        redirectURI,
        codeVerifier,
      });
    },
    validateAuthorizationCode({
      code,
      redirectURI,
      codeVerifier,
    }: {
      code: string;
      redirectURI: string;
      codeVerifier?: string;
    }) {
      return validateAuthorizationCode({ code, redirectURI, options, tokenEndpoint, codeVerifier });
    },
    async getUserInfo(token: { accessToken?: string }) {
      if (!token.accessToken) return null;
      const profile = await getJson<GithubProfile>(`${endpoints.apiUrl}/user`, token.accessToken).catch(() => null);
      if (!profile || !Number.isSafeInteger(profile.id) || profile.id <= 0 || typeof profile.login !== 'string')
        return null;
      const emails = await getJson<GithubEmail[]>(`${endpoints.apiUrl}/user/emails`, token.accessToken).catch(
        () => null,
      );
      const verified = Array.isArray(emails) ? emails.filter((e) => e && e.verified === true) : [];
      const chosen = verified.find((e) => e.primary) ?? verified[0];
      return {
        user: {
          id: String(profile.id),
          name: profile.name || profile.login,
          email: chosen ? chosen.email.toLowerCase() : githubPlaceholderEmail(profile.id),
          emailVerified: Boolean(chosen),
          image: null,
          username: profile.login,
        },
        data: profile,
      };
    },
    refreshAccessToken: () => Promise.reject(new Error('GitHub tokens are not kept')),
    options,
    disableImplicitSignUp: !config.signUp,
  };
}
