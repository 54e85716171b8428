// The official Telnyx Node SDK against verifymock: trigger a call verification, read the spoken code from the
// handset, check it, retrieve it; then a DTMF confirm whose webhook lands on a receiver here and is unwrapped
// with the SDK. Prints one JSON object with what it saw.
import http from 'node:http';
import Telnyx from 'telnyx';

const [base] = process.argv.slice(2);
const control = async (method, path, body) => {
  const response = await fetch(`${base}/_mock${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return response.status === 204 ? null : response.json();
};

const received = [];
const receiver = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => (raw += chunk));
  req.on('end', () => {
    received.push({ raw, headers: req.headers });
    res.writeHead(200).end();
  });
});
await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const hook = `http://127.0.0.1:${receiver.address().port}/hook`;

const client = new Telnyx({ apiKey: 'KEY-node', baseURL: `${base}/v2`, maxRetries: 0 });
const number = '+13035551234';
const profile = await client.verifyProfiles.create({
  name: 'Node app',
  call: { app_name: 'Node' },
  webhook_url: hook,
  dtmf_confirm: { default_timeout_secs: 300 },
});
const created = await client.verifications.triggerCall({ phone_number: number, verify_profile_id: profile.data.id });
await control('POST', '/clock/advance', { seconds: 3 });
const handset = await control('GET', `/handsets/${encodeURIComponent(number)}`);
const spoken = handset.calls[0].prompts[0];
const code = spoken.split(':')[1].split('.')[0].replace(/[^0-9]/g, '');
const checked = await client.verifications.actions.verify(created.data.id, { code });
const retrieved = await client.verifications.retrieve(created.data.id);

const dtmf = await client.post('/verifications/dtmf_confirm', {
  body: { phone_number: '+13035550199', verify_profile_id: profile.data.id },
});
await control('POST', '/clock/advance', { seconds: 6 });
const { public_key: key } = (await control('GET', '/keys')).telnyx;
const event = await client.webhooks.unwrap(received[0].raw, { headers: received[0].headers, key });
let tampered = 'accepted';
try {
  await client.webhooks.unwrap(received[0].raw.replace('accepted', 'acceptex'), { headers: received[0].headers, key });
} catch (error) {
  tampered = 'rejected';
}
receiver.close();
console.log(JSON.stringify({
  type: created.data.type,
  response_code: checked.data.response_code,
  status: retrieved.data.status,
  dtmf_type: dtmf.data.type,
  event_type: event.data.event_type,
  event_status: event.data.payload.status,
  tampered,
}));
