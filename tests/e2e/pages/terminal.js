// A minimal ttyd-style client: xterm.js in the page, the slot's terminal WebSocket from ?ws=.
(function () {
  const term = new window.Terminal({ cols: 100, rows: 26, fontSize: 14, theme: { background: '#1b1f27' } });
  term.open(document.getElementById('terminal'));
  const url = new URLSearchParams(location.search).get('ws');
  const socket = new WebSocket(url, ['tty']);
  socket.binaryType = 'arraybuffer';
  const encoder = new TextEncoder();
  window.slotState = { open: false, closed: null, protocol: null };
  socket.onopen = () => {
    window.slotState.open = true;
    window.slotState.protocol = socket.protocol;
    socket.send(encoder.encode(JSON.stringify({ AuthToken: '', columns: term.cols, rows: term.rows })));
  };
  socket.onclose = (event) => (window.slotState.closed = event.code);
  socket.onmessage = (event) => {
    const bytes = new Uint8Array(event.data);
    if (bytes[0] === 0x30) term.write(bytes.subarray(1));
    if (bytes[0] === 0x31) document.title = new TextDecoder().decode(bytes.subarray(1));
  };
  term.onData((data) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode('0' + data));
  });
  term.focus();
  window.screenText = () => {
    const buffer = term.buffer.active;
    const lines = [];
    for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
    return lines.join('\n');
  };
})();
