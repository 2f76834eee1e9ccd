// Regenerates gpt3-encoder-ids.json: GPT-2 ids from npm gpt-3-encoder 1.1.4, an implementation independent of ours.
// Usage: npm install gpt-3-encoder@1.1.4 (anywhere), then
//   NODE_PATH=<that folder>/node_modules node make-gpt3-encoder-fixture.js <repository>/data/austen > gpt3-encoder-ids.json
const { encode } = require('gpt-3-encoder');
const fs = require('fs');
const dir = process.argv[2];
const files = fs.readdirSync(dir).filter(f => f.endsWith('.txt')).sort();
const text = files.map(f => fs.readFileSync(dir + '/' + f, 'utf8')).join('');
let s = 12345;
const rnd = n => { s = (s * 1103515245 + 12345) % 2147483648; return s % n; };
const cases = [];
for (let i = 0; i < 150; i++) {
  const length = 40 + rnd(400);
  const start = rnd(text.length - length);
  cases.push({ start, length, ids: encode(text.slice(start, start + length)) });
}
const extra = ["Hello world", "hello world", "  multiple   spaces\n\n\nand newlines \n", "tabs\tand\r\nCRLF\r\n",
  "Numbers 1234567890 3.14159 1,000,000 and 2024-11-22", "don't I'll they're we've she'd 'S 'LL",
  "naïve café résumé façade", "Ελληνικά Русский текст עברית العربية", "请考试我的软件！12345", "日本語のテキスト、かな。",
  "emoji 👍🏽 family 👨‍👩‍👧 flag 🇫🇷 😀😀", "combining e\u0301 a\u0308 \u0915\u094D\u0937", "math 𝐀𝐁𝐂 𝟏𝟐𝟑",
  "<|endoftext|> as plain text", "trailing spaces   ", "   leading", "\u00A0nbsp\u2003em\u3000ideo", "a'b'c''d'''e",
  "x=1; y = x**2 // comment", "https://example.com/path?q=1&r=2#frag", "ALL CAPS SHOUTING!!!", "mIxEd CaSe WoRdS"];
for (const t of extra) cases.push({ text: t, ids: encode(t) });
process.stdout.write('[\n' + cases.map(c => JSON.stringify(c)).join(',\n') + '\n]\n');
