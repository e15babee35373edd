#!/usr/bin/env python3
"""Builds the tokenizer fixtures of the Swift tests with the Rust `tokenizers` library.

Trains small tokenizers on Russian text written here, saves their tokenizer.json files, and
records what `tokenizers` returns for every test line: ids, character offsets, the ids with
special tokens split as text, and the decoded text. The Swift tests must reproduce every line.

    python3 scripts/make-tokenizer-fixtures.py        # writes Tests/RuEmbedTests/Fixtures/tokenizers/

Needs: pip install tokenizers (made with 0.23.3).
"""
import json
import os
import sys

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "RuEmbedTests", "Fixtures", "tokenizers")

SENTENCES = [
    "Привет, мир!",
    "Москва — столица России.",
    "Ёлка стоит во дворе, а ёжик спит под ней.",
    "ЁЖИК В ТУМАНЕ — любимый мультфильм моего детства.",
    "Я не знаю, что сказать; может быть, завтра?",
    "Это был тёплый летний вечер, и мы гуляли по набережной.",
    "В 2024 году население города составило 1 250 000 человек.",
    "Цена: 3 999,99 руб. (скидка 15%)",
    "Поезд отправляется в 12:45 с платформы №3.",
    "Температура упала до −15 °C, а влажность — 80 %.",
    "Она сказала: «Не опаздывай!» — и ушла.",
    "Пётр Ильич Чайковский родился в 1840 году.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Широкая электрификация южных губерний даст мощный толчок подъёму сельского хозяйства.",
    "Подъезд, объявление, съёмка, вьюга, сёмга.",
    "Мы используем модель USER-base для эмбеддингов предложений.",
    "Напишите на почту info@example.ru или зайдите на https://example.ru/путь?q=тест.",
    "#новости @пользователь привет!!! ну что... как дела???",
    "Кофе-брейк в 11:00, обед в 13:30.",
    "Достоевский написал «Преступление и наказание» в 1866 году.",
    "Ученые из МГУ им. М. В. Ломоносова опубликовали статью в журнале Nature.",
    "Курс доллара вырос на 0,5 % за неделю.",
    "Какой-то человек, кое-что, что-нибудь, из-за, по-русски.",
    "Извините, вы не подскажете, как пройти в библиотеку?",
    "Погода сегодня отличная: солнце, +25 и лёгкий ветерок.",
    "Я люблю тебя, жизнь, что само по себе и не ново.",
    "Не бойтесь совершенства, вам его не достичь.",
    "Компания ООО «Ромашка» зарегистрирована 01.02.2003.",
    "Телефон: +7 (495) 123-45-67, доб. 89.",
    "Мама мыла раму, а папа читал газету.",
    "Он сказал: it's a nice day, don't you think? I'm sure we'll see.",
    "Смешанный текст: Python 3.12 и Swift 6 работают быстро.",
    "Всё, что нас не убивает, делает нас сильнее.",
    "Белеет парус одинокий в тумане моря голубом.",
    "Москва-река замёрзла, и дети катаются на коньках.",
    "Купи 2 кг яблок, 1,5 л молока и 10 яиц.",
    "Пожалуйста, перезвоните мне после 18:00.",
    "Уважаемые пассажиры, будьте внимательны и осторожны.",
    "Программа завершилась с кодом ошибки 137.",
    "Нейронная сеть обучалась трое суток на восьми видеокартах.",
]

SPECIAL_CASES = [
    "",
    " ",
    "   ",
    "\t",
    "ёжик Ёжик ЁЖИК",
    "е\u0308жик и ёжик — разные строки",           # e + combining diaeresis vs U+0451
    "Е\u0308лка и Ёлка",
    "мо\u0301локо и замо\u0301к",                    # combining acute accents
    "Cамолёт с латинской C и рoссия с латинской o", # Latin look-alikes inside Cyrillic words
    "KOMПЬЮТEР ABTOMOБИЛЬ",                          # mixed Latin/Cyrillic capitals
    "1 000 000 рублей и 1\u00a0000\u00a0000 рублей",  # plain and no-break spaces in numbers
    "2\u2009500 и 3\u202f700",                       # thin and narrow no-break spaces
    "x² + y² = z², Ⅻ век, ½ пирога, ⅔ пути",        # No/Nl numbers
    "١٢٣ и ४५६",                                      # other Nd digits
    "Отлично 👍🏽 и 👍🏿",                               # emoji with skin tones
    "Семья 👨\u200d👩\u200d👧\u200d👦 и флаг 🇷🇺",        # ZWJ family, regional indicators
    "Сердце ❤️ и звезда ⭐",
    "Табуляция\tвнутри\tстроки",
    "Два\t\tтаба и\t пробел",
    "Перевод строки\r\nвнутри записи",
    "Одинокий\rвозврат каретки",
    "   ведущие пробелы",
    "висячие пробелы   ",
    "много     пробелов     между     словами",
    " один пробел в начале",
    "\u00a0неразрывный пробел в начале",
    "слово\u00a0\u00a0два неразрывных",
    "пробел и неразрывный \u00a0слово",
    "неразрывный и пробел\u00a0 слово",
    "Управляющие\x00символы\x01внутри\x7fтекста",
    "Разделитель\x1cфайлов и\x1dгрупп",
    "Вертикальная\x0bтабуляция и\x0cперевод страницы",
    "Символ\x85NEL",
    "Нулевой\u200bпробел и\u200cнесоединитель\u200dсоединитель",
    "\ufeffBOM в начале строки",
    "Мягкий\u00adперенос",
    "<s> в начале",
    "текст с <mask> внутри",
    "два <mask><mask> подряд",
    "<mask>в начале без пробела",
    "пробелы   <mask>   вокруг",
    "</s> и <pad> и <unk>",
    "[CLS] и [SEP] и [MASK] и [UNK]",
    "<s>",
    "<mask>",
    "не совсем <mas k> и <s >",
    "it's I'm we'll they've you're he'd don't O'Reilly",
    "'s 't 're ''s",
    "ЗАГЛАВНЫЕ 's И 'S",
    "Кавычки «ёлочки», „лапки“ и \"прямые\"",
    "Тире — дефис - минус − и многоточие…",
    "中文字符 и 日本語",
    "Ελληνικά ΣΑΣ σας",
    "İstanbul и ß и ﬁ",
    "ＡＢＣ１２３ полноширинные",
    "Українська ї, білоруська ў, сербская ђ",
    "а" * 300,
    "Превысокомногорассмотрительствующий" * 12,
    "Слово" + "!" * 50,
    "123456789012345678901234567890",
    "https://ru.wikipedia.org/wiki/Заглавная_страница",
    "C:\\Users\\Иван\\Документы\\отчёт.docx",
    "def f(x): return x ** 2  # комментарий",
    "😀😃😄😁😆😅🤣😂🙂🙃",
    "\U0001F9D1\u200d\U0001F4BB работает",
    "𝐀𝐁𝐂 математические буквы",
    "Эмодзи клавиши 1️⃣ 2️⃣",
    "конец строки с пробелом ",
    "   ",
    "\u3000идеографический пробел",
    "кошка и кошками, чёрная кошка. Кошка!",     # single_word added token (normalized)
    "живу в [[город]]   и в[[город]]",             # rstrip added token (normalized)
    "<0x41> набрано руками",
]


def long_text(seed: int) -> str:
    words = []
    for k in range(45):
        words.append(SENTENCES[(seed * 7 + k) % len(SENTENCES)])
    return " ".join(words)


def test_lines():
    lines = list(SPECIAL_CASES)
    for s in SENTENCES:
        lines.append(s)
        lines.append(s.lower())
        lines.append(s.upper())
        lines.append("query: " + s)
        lines.append("passage:  " + s.replace(" ", "  "))
    for seed in range(3):
        lines.append(long_text(seed))
    return lines


def training_corpus():
    corpus = []
    for repeat in range(3):
        for s in SENTENCES:
            corpus += [s, s.lower(), s.upper(), "query: " + s, "passage: " + s]
    corpus += [c for c in SPECIAL_CASES if "<" not in c and "[" not in c]
    return corpus


def roberta_bpe():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, min_frequency=2, show_progress=False,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", AddedToken("<mask>", lstrip=True, special=True)],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(), trainer)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")), trim_offsets=True, add_prefix_space=False)
    tok.enable_truncation(512)
    return tok


def bert_wordpiece(lowercase: bool):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=None if lowercase else False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=2000, show_progress=False, limit_alphabet=400,
                                        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(training_corpus(), trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if lowercase:
        tok.post_processor = processors.BertProcessing(("[SEP]", sep), ("[CLS]", cls))
    else:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


def nfkc_bpe_legacy_merges():
    """NFKC + Lowercase, Whitespace + single digits, BPE with an end-of-word suffix and
    no unknown token (unknown characters vanish), merges saved in the old "a b" form."""
    tok = Tokenizer(models.BPE(unk_token=None, end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    trainer = trainers.BpeTrainer(vocab_size=1500, show_progress=False, end_of_word_suffix="</w>", limit_alphabet=90)
    tok.train_from_iterator(training_corpus(), trainer)
    return tok


def write_legacy_merges(path):
    """Rewrites the merges of a saved tokenizer.json as "a b" strings (the format before
    tokenizers 0.20; `save` always writes pairs)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    merges = data["model"]["merges"]
    assert all(" " not in a and " " not in b for a, b in merges)
    data["model"]["merges"] = [a + " " + b for a, b in merges]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2)


def metaspace_template():
    """NFC, strip, ё → е; Metaspace (prepend for the first piece) then punctuation; BPE with
    byte fallback; TemplateProcessing <s> $A </s>; added tokens matched after normalization."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Strip(), normalizers.Replace("ё", "е")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first"), pre_tokenizers.Punctuation()])
    byte_tokens = ["<0x%02X>" % b for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=1500, show_progress=False, limit_alphabet=100,
                                  special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens)
    tok.train_from_iterator(training_corpus(), trainer)
    tok.add_tokens([AddedToken("кошка", single_word=True, normalized=True),
                    AddedToken("[[город]]", rstrip=True, normalized=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))])
    return tok


def split_bytelevel():
    """GPT-2 pattern as a Split pre-tokenizer, ByteLevel without its own regex but with a
    prefix space, ignore_merges, and the ByteLevel post-processor trimming offsets."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    gpt2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(gpt2), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, show_progress=False, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(), trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    return tok


# Single components run on every short test line: their JSON (as the library writes it) and
# what they return, so a failure points at one component rather than a whole pipeline.
def components():
    n, p = normalizers, pre_tokenizers
    gpt2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
    return {
        "normalizers": {
            "nfc": n.NFC(), "nfd": n.NFD(), "nfkc": n.NFKC(), "nfkd": n.NFKD(), "lowercase": n.Lowercase(),
            "strip": n.Strip(), "strip-left": n.Strip(left=True, right=False),
            "replace": n.Replace("ё", "е"), "prepend": n.Prepend("▁"),
            "bert-lower": n.BertNormalizer(lowercase=True), "bert-cased": n.BertNormalizer(lowercase=False, strip_accents=False),
            "bert-strip-only": n.BertNormalizer(lowercase=False, strip_accents=True, handle_chinese_chars=False),
            "bert-no-clean": n.BertNormalizer(clean_text=False, lowercase=True),
            "sequence": n.Sequence([n.NFKD(), n.Lowercase(), n.Replace(" ", "▁")]),
        },
        "pre_tokenizers": {
            "bytelevel": p.ByteLevel(add_prefix_space=False), "bytelevel-prefix": p.ByteLevel(add_prefix_space=True),
            "bytelevel-no-regex": p.ByteLevel(add_prefix_space=False, use_regex=False),
            "whitespace": p.Whitespace(), "whitespace-split": p.WhitespaceSplit(), "bert": p.BertPreTokenizer(),
            "punctuation": p.Punctuation(), "punctuation-merged-previous": p.Punctuation(behavior="merged_with_previous"),
            "digits": p.Digits(individual_digits=False), "digits-individual": p.Digits(individual_digits=True),
            "metaspace": p.Metaspace(), "metaspace-never-nosplit": p.Metaspace(prepend_scheme="never", split=False),
            "split-gpt2": p.Split(Regex(gpt2), behavior="isolated"),
            "split-literal-removed": p.Split(" ", behavior="removed"),
            "split-literal-next": p.Split("а", behavior="merged_with_next"),
            "split-literal-contiguous-invert": p.Split("о", behavior="contiguous", invert=True),
            "sequence": p.Sequence([p.WhitespaceSplit(), p.Digits(individual_digits=True), p.Punctuation()]),
        },
    }


def component_json(component):
    return json.loads(component.__getstate__())


def write_components():
    specs = components()
    # The special cases and the plain sentences (not their case and prompt variants): enough
    # for every trap, and small enough to commit.
    short = [t for t in SPECIAL_CASES + SENTENCES if len(t) <= 400]
    out = {"lines": short, "normalizers": {}, "pre_tokenizers": {}}
    for name, c in specs["normalizers"].items():
        out["normalizers"][name] = {"json": component_json(c), "outputs": [c.normalize_str(t) for t in short]}
    for name, c in specs["pre_tokenizers"].items():
        out["pre_tokenizers"][name] = {
            "json": component_json(c),
            "outputs": [[[piece, list(offsets)] for piece, offsets in c.pre_tokenize_str(t)] for t in short]}
    with open(os.path.join(OUT, "components.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))


def record(tok, text):
    enc = tok.encode(text)
    row = {"ids": enc.ids, "offsets": [list(o) for o in enc.offsets], "decoded": tok.decode(enc.ids)}
    tok.encode_special_tokens = True
    as_text = tok.encode(text).ids
    tok.encode_special_tokens = False
    if as_text != enc.ids:
        row["ids_specials_as_text"] = as_text
    return row


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = test_lines()
    with open(os.path.join(OUT, "texts.jsonl"), "w", encoding="utf-8") as f:
        for t in lines:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    write_components()
    builders = {
        "roberta-bpe": roberta_bpe,
        "bert-uncased": lambda: bert_wordpiece(True),
        "bert-cased-template": lambda: bert_wordpiece(False),
        "nfkc-bpe-legacy-merges": nfkc_bpe_legacy_merges,
        "metaspace-template": metaspace_template,
        "split-bytelevel": split_bytelevel,
    }
    for name, build in builders.items():
        tok = build()
        tok.save(os.path.join(OUT, name + ".json"))
        if name == "nfkc-bpe-legacy-merges":
            write_legacy_merges(os.path.join(OUT, name + ".json"))
        tok = Tokenizer.from_file(os.path.join(OUT, name + ".json"))  # expectations from the saved file
        with open(os.path.join(OUT, name + ".expected.jsonl"), "w", encoding="utf-8") as f:
            for t in lines:
                f.write(json.dumps(record(tok, t), ensure_ascii=False) + "\n")
        print(f"{name}: vocab {tok.get_vocab_size()}", file=sys.stderr)
    print(f"{len(lines)} lines, tokenizers {tokenizers.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
