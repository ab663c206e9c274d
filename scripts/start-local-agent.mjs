// Runs the agent for "This computer" in the foreground, makes sure a slot named "main" exists, and says how to use
// it. Ctrl-C stops the agent; the slots keep running under PM2 and are back at the next start.
import { loadConfig, runAgent, ConfigError } from '../remote-agent/dist/index.js';
import { StartupError } from '../remote-agent/dist/server.js';
import { ensureAdminToken } from '../remote-agent/dist/http/admin-token.js';

const bold = (text) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);

let config;
let adminUrl;
try {
  config = loadConfig({ overrides: { logLevel: process.env.SLOTDECK_AGENT_LOG_LEVEL ?? 'warn' } });
  ({ adminUrl } = await runAgent(config));
} catch (error) {
  if (error instanceof ConfigError || error instanceof StartupError) {
    console.error(`slotdeck: ${error.message}`);
    process.exit(2);
  }
  throw error;
}

const token = ensureAdminToken(config.dataDir);
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const { slots } = await (await fetch(`${adminUrl}/api/v1/slots?name=main`, { headers })).json();
if (slots.length === 0) {
  const response = await fetch(`${adminUrl}/api/v1/slots`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'main' }),
  });
  if (!response.ok) {
    console.error(`slotdeck: could not create the slot "main": ${(await response.json()).error.message}`);
    process.exit(1);
  }
} else if (slots[0].state !== 'running') {
  await fetch(`${adminUrl}/api/v1/slots/${slots[0].id}/start`, { method: 'POST', headers });
}

const cli = 'node remote-agent/bin/slotdeck-agent.js';
console.log(`
${bold('Slotdeck agent')} is running for This computer on ${adminUrl}
  data: ${config.dataDir}

Slot ${bold('main')} is running. Work in it from another terminal (detach with Ctrl-]):
  ${cli} attach main
Watch it without typing:
  ${cli} attach main --read-only
Admin API (token: ${cli} token):
  curl -H "Authorization: Bearer $(${cli} token)" ${adminUrl}/api/v1/slots

Ctrl-C stops the agent; slots keep running and are here again at the next start.
Stop every slot too: ${cli} down (with the agent stopped).
`);
