// The three lines of the README, then what an app does next: passages with their own prompt,
// and the closest one by cosine. Prints the query's vector first (one number per line after
// a "query" line), which scripts/check-example compares with ru-embed's.
import RuEmbed

let encoder = try SentenceEncoder(model: "deepvk/USER-base")   // a folder or a hub id
let vectors: [[Float]] = try encoder.embed(["Привет, мир"], prompt: "query")   // prompt: a name of the model's prompts; nil = the model's default

print("query \(vectors[0].count)")
for value in vectors[0] { print(value) }

let passages = ["Здравствуй, мир!", "Рецепт борща со сметаной", "Курс рубля на сегодня"]
let passageVectors = try encoder.embed(passages, prompt: "passage")
// The vectors are L2-normalised: the cosine is the dot product.
let scores = passageVectors.map { zip($0, vectors[0]).reduce(Float(0)) { $0 + $1.0 * $1.1 } }
let best = scores.indices.max { scores[$0] < scores[$1] }!
print("closest passage: \(passages[best]) (cosine \(scores[best]))")

// The rest of the getting-started article (Tour.swift).
try runTour(encoder)
