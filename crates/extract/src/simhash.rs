//! SimHash of a page's visible text: 64 bits such that pages whose text
//! is nearly the same have fingerprints a few bits apart (Charikar 2002;
//! Manku, Jain and Das Sarma 2007 on web pages).
//!
//! Features are shingles of three consecutive words, each counted once
//! however often it occurs (a page of tables full of numbers would else be
//! nothing but its `0 0 0` shingle); a 64-kilobit filter drops the
//! repeats, and the rare distinct shingle it mistakes for a repeat.
//! Words are ASCII-lowercased and `&…;` character references skipped.
//!
//! Numbers: in a text with a few numbers (a calendar's date, a listing's
//! page number, a count), every word holding a digit counts as one and the
//! same word, so pages of one template filled with other numbers come out
//! the same. In a text with many different numbers (`NUMBERS_ARE_CONTENT`
//! or more: tables, scores, a list of links labelled by number) the
//! numbers are what the page says, and count as written. Both versions of
//! the shingles that hold a number are counted as the text goes by; the
//! count decides at the end which one is used. Text the scanner reports as
//! boilerplate (`<nav>`, `<aside>`, `<footer>`) is never fed.
//!
//! Words that echo the page's own query values ([`SimHasher::ignore_words`]:
//! `?brand=acme&color=red` → `acme`, `red`) are skipped: a faceted
//! search's pages say which filters they show, and would otherwise differ
//! by exactly that.
//!
//! The 64 per-bit counters are kept as bit planes (a vertical binary
//! counter: adding a feature is a ripple-carry of a few word operations),
//! so a feature costs a handful of instructions rather than 64 additions.

/// Bit planes of the per-bit counters: up to 2^16 - 1 features.
const PLANES: usize = 16;
/// Features beyond this many are ignored (a page of ~500 KB of text).
const MAX_FEATURES: u32 = (1 << PLANES) - 1;
/// Bytes of visible text fingerprinted, at most: a template page fits
/// whole, a long page is known by its beginning (its header, title and
/// first paragraphs, where two real pages differ). It bounds the cost: a
/// documentation page holds 20-30 KB of text, and hashing all of it cost
/// a third of the crawl's CPU.
const MAX_TEXT: usize = 3072;
/// Bits of the filter of features already counted (about one feature per
/// six bytes of text: ~700 features, 4 % of them mistaken for repeats).
const SEEN_BITS: usize = 1 << 14;
/// From this many different words holding a digit on, numbers count as
/// written.
const NUMBERS_ARE_CONTENT: usize = 8;

/// The three feature counters: shingles without a number, and those with
/// one, with numbers as one word or as written.
const COMMON: usize = 0;
const NUMBERS_AS_ONE: usize = 1;
const NUMBERS_AS_WRITTEN: usize = 2;

/// Per-bit counts of features, as bit planes. Features are added eight
/// at a time: a carry-save adder tree sums eight of them into a 4-bit
/// count per bit, which is then added to the planes (about eight word
/// operations per feature, where adding one at a time ripples a carry
/// through six or seven planes).
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    planes: [u64; PLANES],
    features: u32,
    /// Features counted but not yet in the planes.
    pending: [u64; 8],
    pending_len: usize,
}

impl Counter {
    fn count(&mut self, h: u64) {
        if self.features >= MAX_FEATURES {
            return;
        }
        self.features += 1;
        self.pending[self.pending_len] = h;
        self.pending_len += 1;
        if self.pending_len == self.pending.len() {
            self.add_eight();
            self.pending_len = 0;
        }
    }

    /// Add the eight pending features to the planes.
    fn add_eight(&mut self) {
        /// A full adder on 64 lanes: (sum, carry).
        fn csa(x: u64, y: u64, z: u64) -> (u64, u64) {
            let u = x ^ y;
            (u ^ z, (x & y) | (u & z))
        }
        let [a, b, c, d, e, f, g, h] = self.pending;
        let (s1, c1) = csa(a, b, c);
        let (s2, c2) = csa(d, e, f);
        let (s3, c3) = csa(s1, s2, g);
        let (ones, c4) = (s3 ^ h, s3 & h);
        let (t1, d1) = csa(c1, c2, c3);
        let (twos, d2) = (t1 ^ c4, t1 & c4);
        let (fours, eights) = (d1 ^ d2, d1 & d2);
        let mut carry = 0u64;
        for (plane, x) in self.planes.iter_mut().zip([ones, twos, fours, eights]) {
            let u = *plane ^ x;
            let sum = u ^ carry;
            carry = (*plane & x) | (u & carry);
            *plane = sum;
        }
        self.ripple(carry, 4);
    }

    /// Add `carry` into the planes from plane `from` on.
    fn ripple(&mut self, mut carry: u64, from: usize) {
        for plane in &mut self.planes[from..] {
            if carry == 0 {
                break;
            }
            let sum = *plane ^ carry;
            carry &= *plane;
            *plane = sum;
        }
    }

    /// Add the features still pending, one at a time.
    fn flush(&mut self) {
        for i in 0..self.pending_len {
            self.ripple(self.pending[i], 0);
        }
        self.pending_len = 0;
    }

    /// How many features have bit `bit` (only the planes a count of
    /// `features` can reach).
    fn bit_count(&self, bit: u32) -> u64 {
        let used = (u32::BITS - self.features.leading_zeros()) as usize;
        self.planes[..used.min(PLANES)]
            .iter()
            .enumerate()
            .fold(0u64, |acc, (p, plane)| acc | (((plane >> bit) & 1) << p))
    }
}

/// One word of the shingle window: as one word for numbers, as written,
/// and whether it holds a digit.
#[derive(Debug, Clone, Copy, Default)]
struct Word {
    one: u64,
    written: u64,
    number: bool,
}

/// The word every word holding a digit becomes.
const NUMBER_WORD: u64 = 0x9e37_79b9_7f4a_7c15;

/// Builds one page's SimHash from its text, fed in pieces.
#[derive(Debug, Clone)]
pub struct SimHasher {
    counters: [Counter; 3],
    /// The last two words (shingle window), how many words were seen in
    /// all (shingles start at the third), and how many held a digit.
    previous: [Word; 2],
    words: u32,
    /// Different words holding a digit (up to `NUMBERS_ARE_CONTENT`).
    numbers: Vec<u64>,
    /// Features counted so far (a bit per hash value modulo its size).
    seen: Box<[u64]>,
    /// Hashes of words to skip.
    ignored: Vec<u64>,
    /// Text bytes fed so far (up to `MAX_TEXT`).
    fed: usize,
}

impl Default for SimHasher {
    fn default() -> Self {
        SimHasher {
            counters: [Counter::default(); 3],
            previous: [Word::default(); 2],
            words: 0,
            numbers: Vec::new(),
            seen: vec![0; SEEN_BITS / 64].into_boxed_slice(),
            ignored: Vec::new(),
            fed: 0,
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A 64-bit finalizer (splitmix64): every input bit moves every output
/// bit, as SimHash needs of its feature hashes.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Eight bytes of `bytes` from `at`, little-endian; zeros (separators)
/// past the end.
#[inline]
fn load(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(chunk) = bytes.get(at..at + 8) {
        b.copy_from_slice(chunk);
    } else if let Some(rest) = bytes.get(at..) {
        b[..rest.len()].copy_from_slice(rest);
    }
    u64::from_le_bytes(b)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
const LOWER: u64 = 0x2020_2020_2020_2020;

/// The high bit of each byte of `v` (every byte below 0x80) that lies
/// strictly between `m` and `n` (Anderson's bit twiddling hacks,
/// "hasbetween": exact per byte, no carry crosses a byte).
#[inline]
fn between(v: u64, m: u8, n: u8) -> u64 {
    (ONES * (127 + u64::from(n))).wrapping_sub(v)
        & !v
        & v.wrapping_add(ONES * (127 - u64::from(m)))
        & HIGH
}

/// For eight bytes: the high bit of each byte that belongs to a word
/// (letter, digit, `_` or a byte of a non-ASCII character), and of each
/// ASCII digit. Separators are every other byte: ASCII punctuation,
/// spaces and control characters.
#[inline]
fn classes(x: u64) -> (u64, u64) {
    let t = x & !HIGH;
    let digits = between(t, b'0' - 1, b'9' + 1) & !x;
    let letters = between(t | LOWER, b'a' - 1, b'z' + 1);
    let underscore = between(t, b'_' - 1, b'_' + 1);
    ((x & HIGH) | digits | letters | underscore, digits)
}

/// The next word of `bytes` from `at`: its hash (ASCII lower-cased:
/// `| 0x20` leaves digits as they are), whether it holds a digit, and
/// where to go on. `&…;` character references are skipped. Eight bytes
/// are classified at a time, and a word of up to eight bytes is hashed
/// from the same load (most words are).
fn next_word(bytes: &[u8], mut at: usize) -> Option<(u64, bool, usize)> {
    // To the first byte of a word.
    let (start, x, word, digits, available) = loop {
        if at >= bytes.len() {
            return None;
        }
        let x = load(bytes, at);
        let (word, digits) = classes(x);
        if word == 0 {
            at += 8;
            continue;
        }
        let skip = word.trailing_zeros() / 8;
        at += skip as usize;
        // A character reference's name is no word.
        let reference = match at.checked_sub(1).map(|i| bytes[i]) {
            Some(b'&') => true,
            Some(b'#') => at >= 2 && bytes[at - 2] == b'&',
            _ => false,
        };
        let name = at;
        if reference {
            while bytes.get(at).is_some_and(u8::is_ascii_alphanumeric) {
                at += 1;
            }
        }
        // `&_x`, `&é`: no name, so a word.
        if at == name {
            let shift = 8 * skip;
            break (at, x >> shift, word >> shift, digits >> shift, 8 - skip);
        }
    };
    // Most words end within the eight bytes already classified (shifted
    // down to the word's first byte): hashed from them as from a load at
    // the word's start.
    let len = (!word & HIGH).trailing_zeros() / 8;
    if len < available {
        let keep = (1u64 << (8 * len)) - 1;
        let h = (FNV_OFFSET ^ ((x | LOWER) & keep) ^ u64::from(len)).wrapping_mul(FNV_PRIME);
        return Some((h, digits & keep != 0, start + len as usize));
    }
    // A longer word, eight bytes at a time from its start.
    at = start;
    let mut h = FNV_OFFSET;
    let mut digit = false;
    loop {
        let x = load(bytes, at);
        let (word, digits) = classes(x);
        let separators = !word & HIGH;
        if separators == 0 {
            digit |= digits != 0;
            h = (h ^ (x | LOWER)).wrapping_mul(FNV_PRIME);
            h ^= h >> 29;
            at += 8;
            continue;
        }
        let len = separators.trailing_zeros() / 8;
        // The bytes before the first separator (len < 8).
        let keep = (1u64 << (8 * len)) - 1;
        digit |= digits & keep != 0;
        let rest = (x | LOWER) & keep;
        h = (h ^ rest ^ u64::from(len)).wrapping_mul(FNV_PRIME);
        return Some((h, digit, at + len as usize));
    }
}

impl SimHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Skip the words of `text` (those without digits, which all count as
    /// one word anyway) wherever they occur in the page.
    pub fn ignore_words(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some((h, digit, next)) = next_word(bytes, i) {
            i = next;
            if !digit && !self.ignored.contains(&h) && self.ignored.len() < 64 {
                self.ignored.push(h);
            }
        }
    }

    /// Whether more text would still be fingerprinted.
    pub fn wants_text(&self) -> bool {
        self.fed < MAX_TEXT
    }

    /// Feed one piece of visible text (entities not decoded). Pieces are
    /// separate words.
    pub fn feed(&mut self, text: &str) {
        let room = MAX_TEXT.saturating_sub(self.fed);
        let bytes = &text.as_bytes()[..text.len().min(room)];
        self.fed += bytes.len();
        let mut i = 0;
        while let Some((h, digit, next)) = next_word(bytes, i) {
            i = next;
            self.word(h, digit);
        }
    }

    fn word(&mut self, written: u64, number: bool) {
        let word = Word {
            one: if number { NUMBER_WORD } else { written },
            written,
            number,
        };
        if !self.ignored.is_empty() && self.ignored.contains(&word.written) {
            return;
        }
        self.words += 1;
        if number
            && self.numbers.len() < NUMBERS_ARE_CONTENT
            && !self.numbers.contains(&word.written)
        {
            self.numbers.push(word.written);
        }
        if self.words >= 3 {
            let [w1, w2] = self.previous;
            self.shingle(&[w1, w2, word]);
        }
        self.previous = [self.previous[1], word];
    }

    /// Count a shingle of up to three words.
    fn shingle(&mut self, words: &[Word]) {
        fn hash(words: &[Word], pick: impl Fn(&Word) -> u64) -> u64 {
            mix(words
                .iter()
                .rev()
                .enumerate()
                .fold(0u64, |h, (i, word)| h ^ pick(word).rotate_left(i as u32)))
        }
        if words.iter().any(|w| w.number) {
            self.add(NUMBERS_AS_ONE, hash(words, |w| w.one));
            self.add(NUMBERS_AS_WRITTEN, hash(words, |w| w.written));
        } else {
            self.add(COMMON, hash(words, |w| w.one));
        }
    }

    /// Count one feature's bits, unless it was counted before.
    fn add(&mut self, counter: usize, h: u64) {
        let bit = (h >> 48) as usize % SEEN_BITS;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if self.seen[word] & mask != 0 {
            return;
        }
        self.seen[word] |= mask;
        self.counters[counter].count(h);
    }

    /// The fingerprint: bit i is set when more than half of the features
    /// have it. `None` for a page without words (it would match every
    /// other empty page). A text of one or two words is one feature.
    pub fn finish(mut self) -> Option<u64> {
        if self.words == 0 {
            return None;
        }
        if self.words < 3 {
            let window = self.previous;
            self.shingle(&window[2 - self.words as usize..]);
        }
        for counter in &mut self.counters {
            counter.flush();
        }
        let numbers_are_content = self.numbers.len() >= NUMBERS_ARE_CONTENT;
        let common = &self.counters[COMMON];
        let numbered = &self.counters[if numbers_are_content {
            NUMBERS_AS_WRITTEN
        } else {
            NUMBERS_AS_ONE
        }];
        let n = u64::from(common.features) + u64::from(numbered.features);
        let mut fingerprint = 0u64;
        for bit in 0..64 {
            if (common.bit_count(bit) + numbered.bit_count(bit)) * 2 > n {
                fingerprint |= 1 << bit;
            }
        }
        Some(fingerprint)
    }
}

/// The SimHash of one text.
pub fn simhash(text: &str) -> Option<u64> {
    let mut h = SimHasher::new();
    h.feed(text);
    h.finish()
}

/// Bits that differ between two fingerprints.
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-bit counts by plain addition, for checking the planes.
    fn naive(features: &[u64]) -> u64 {
        let mut counts = [0u64; 64];
        for f in features {
            for (bit, c) in counts.iter_mut().enumerate() {
                *c += (f >> bit) & 1;
            }
        }
        let n = features.len() as u64;
        (0..64).fold(0, |acc, bit| {
            if counts[bit] * 2 > n {
                acc | (1 << bit)
            } else {
                acc
            }
        })
    }

    #[test]
    fn planes_count_like_addition() {
        let mut x = 7u64;
        for n in [1usize, 2, 3, 10, 255, 256, 1000, 70_000] {
            let features: Vec<u64> = (0..n)
                .map(|_| {
                    x = mix(x.wrapping_add(1));
                    // Skewed bits, so the majority is not a coin toss.
                    x & mix(x) | (x & 0xff)
                })
                .collect();
            let mut h = SimHasher::new();
            // Past the cap the planes stop counting; so does naive.
            let counted = &features[..n.min(MAX_FEATURES as usize)];
            for f in &features {
                h.counters[COMMON].count(*f);
            }
            h.words = 3;
            assert_eq!(h.finish(), Some(naive(counted)), "{n} features");
        }
    }

    #[test]
    fn numbers_case_and_entities_do_not_matter() {
        let a = simhash(
            "Events for 2026-01-05 (day 4): nothing scheduled. Back to the calendar &amp; home.",
        );
        let b = simhash(
            "events for 2027-11-30 (day 698): Nothing scheduled. Back to the calendar &#38; home.",
        );
        assert_eq!(a, b);
        assert!(a.is_some());
    }

    #[test]
    fn different_texts_are_far_apart_and_small_edits_near() {
        let base = "The quick brown fox jumps over the lazy dog while the farmer sleeps \
                    under an old oak tree near the river bank on a warm summer afternoon \
                    and the children play football in the meadow behind the red barn";
        let edited = base.replace("football", "cricket");
        let other = "Configuration files are read from the current directory first, then \
                     from the user's home directory, and finally from the system wide \
                     location; later files override the settings of earlier ones";
        let (a, b, c) = (simhash(base), simhash(&edited), simhash(other));
        let (Some(a), Some(b), Some(c)) = (a, b, c) else {
            panic!("texts have words");
        };
        assert!(distance(a, b) <= 12, "one word of 34: {}", distance(a, b));
        assert!(distance(a, c) > 16, "unrelated: {}", distance(a, c));
    }

    #[test]
    fn numbers_count_as_written_where_they_are_the_content() {
        // Pages labelled by number, linking to others by number: the
        // numbers are what differs, and they count.
        let page = |i: u32| {
            let links: String = (i + 1..i + 13).map(|j| format!("Page {j} ")).collect();
            format!("Page {i} Section {i} of the test documentation: a paragraph. {links}")
        };
        let (Some(a), Some(b)) = (simhash(&page(17)), simhash(&page(90))) else {
            panic!("texts have words");
        };
        assert!(distance(a, b) > 10, "{}", distance(a, b));
        // A template with a date in it: the date does not count.
        let day = |d: &str| {
            simhash(&format!(
                "Events for {d}: nothing scheduled. Previous day, next day, back to the calendar and the home page."
            ))
        };
        assert_eq!(day("2026-01-05"), day("2029-07-30"));
    }

    #[test]
    fn repeats_count_once() {
        let table = "1 2 3 4 5 6 7 8 9 ".repeat(500);
        let a = format!("Configuration files are read from the current directory first {table}");
        let b = format!("Results of the benchmark on two cores with the default settings {table}");
        let (Some(a), Some(b)) = (simhash(&a), simhash(&b)) else {
            panic!("texts have words");
        };
        assert!(distance(a, b) > 10, "{}", distance(a, b));
    }

    #[test]
    fn echoed_query_values_are_skipped() {
        let with = |values: &str, text: &str| {
            let mut h = SimHasher::new();
            h.ignore_words(values);
            h.feed(text);
            h.finish()
        };
        let a = with(
            "acme red shoes",
            "Shoes: Acme, red. No results. Try fewer filters.",
        );
        let b = with(
            "zeta blue shoes",
            "Shoes: Zeta, blue. No results. Try fewer filters.",
        );
        assert_eq!(a, b);
        assert!(a.is_some());
        assert_ne!(
            simhash("Shoes: Acme, red. No results. Try fewer filters."),
            simhash("Shoes: Zeta, blue. No results. Try fewer filters.")
        );
    }

    /// Byte classes for tokenizing.
    const SEPARATOR: u8 = 0;
    const LETTER: u8 = 1;
    const DIGIT: u8 = 2;
    static CLASS: [u8; 256] = {
        let mut t = [SEPARATOR; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            t[b] = if c.is_ascii_digit() {
                DIGIT
            } else if c.is_ascii_alphabetic() || c >= 0x80 || c == b'_' {
                LETTER
            } else {
                SEPARATOR
            };
            b += 1;
        }
        t
    };

    /// The words of `text` one byte at a time, by [`CLASS`]: what
    /// [`next_word`] must find eight bytes at a time.
    fn words_by_class(text: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let b = text[at];
            if CLASS[b as usize] == SEPARATOR {
                at += 1;
                if b == b'&' {
                    if text.get(at) == Some(&b'#') {
                        at += 1;
                    }
                    while text.get(at).is_some_and(u8::is_ascii_alphanumeric) {
                        at += 1;
                    }
                }
                continue;
            }
            let start = at;
            while at < text.len() && CLASS[text[at] as usize] != SEPARATOR {
                at += 1;
            }
            let word = &text[start..at];
            let digit = word.iter().any(u8::is_ascii_digit);
            out.push((word.to_vec(), digit));
        }
        out
    }

    #[test]
    fn words_eight_bytes_at_a_time_are_the_words_byte_by_byte() {
        let mut texts: Vec<Vec<u8>> = [
            "Events for 2026-01-05 &amp; &#38;x &#x26; &&amp;y a&b #&c _under_score",
            "Ünïcödé wörds, DEL\x7f and tabs\tnewlines\nend",
            "averyveryverylongwordindeed1234567890 x yy zzz 12345678 123456789",
            "@[\\]^`{|}~ /:;<=>? !\"#$%'()*+,-. 0123456789 AZaz",
            "",
            "&",
            "a",
        ]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
        // Every byte value, in runs and alone.
        texts.push((0..=255u8).collect());
        texts.push((0..=255u8).flat_map(|b| [b, b' ', b, b, b'x']).collect());
        let mut x = 1u64;
        for _ in 0..2000 {
            let len = (mix(x) % 40) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    x = mix(x.wrapping_add(1));
                    b"aZ9_ &#;.\x80\xc3\xff-x\t1"[(x % 16) as usize]
                })
                .collect();
            texts.push(text);
        }
        for text in &texts {
            let expected = words_by_class(text);
            let mut found = Vec::new();
            let mut at = 0;
            while let Some((h, digit, next)) = next_word(text, at) {
                found.push((h, digit));
                at = next;
            }
            assert_eq!(
                found.len(),
                expected.len(),
                "{:?}",
                String::from_utf8_lossy(text)
            );
            for ((h, digit), (word, d)) in found.iter().zip(&expected) {
                assert_eq!(*digit, *d, "{word:?}");
                // The same word hashes the same alone.
                let (alone, _, _) = next_word(word, 0).unwrap();
                assert_eq!(*h, alone, "{word:?}");
            }
            // Different words (ASCII case aside), different hashes.
            let lower = |w: &[u8]| w.iter().map(|b| b | 0x20).collect::<Vec<u8>>();
            for (i, (a, _)) in expected.iter().enumerate() {
                for (j, (b, _)) in expected.iter().enumerate() {
                    let same = lower(a) == lower(b);
                    assert_eq!(same, found[i].0 == found[j].0, "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn empty_and_tiny_texts() {
        assert_eq!(simhash(""), None);
        assert_eq!(simhash(" \n\t&nbsp; "), None);
        let one = simhash("Contact");
        let two = simhash("About us");
        assert!(one.is_some() && two.is_some());
        assert_ne!(one, two);
        assert_eq!(simhash("About  us"), two);
    }
}
