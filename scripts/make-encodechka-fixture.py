#!/usr/bin/env python3
"""Builds the STS fixture of the Encodechka job's test (Tests/RuEmbedTests/Fixtures/encodechka).

stsb_dev.csv: Russian sentence pairs written here, in the columns of Encodechka's STS-B file
(sentence1, sentence2, similarity_score from 0 to 5), with tied gold scores, fields that need
quoting (commas, quotes, a newline) and a long text. expected.json: for each fixture model
under Tests/RuEmbedTests/Fixtures/models, the STS score by Encodechka's protocol
(encodechka_eval: the Spearman correlation, scipy.stats.spearmanr, of the gold scores with the
dot products of the two sentences' vectors) on the vectors of sentence-transformers'
encode(..., normalize_embeddings=True) with the model's default prompt.

The test runs `make -C Examples/encodechka MODEL=<model> DATA=<this folder> OUT=<tmp> sts` with
the built tools and expects these scores within 1e-3.

    python3 scripts/make-encodechka-fixture.py

Made with sentence-transformers 6.2, torch 2.13, scipy 1.17.
"""
import csv
import json
import os

import numpy as np
import scipy.stats
from sentence_transformers import SentenceTransformer

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "RuEmbedTests", "Fixtures")
OUT = os.path.join(FIXTURES, "encodechka")
MODELS = ["bert-e5", "deberta-rel", "roberta-mean", "xlmr-pool"]

PAIRS = [
    ("Мальчик играет с собакой во дворе.", "Ребёнок играет с псом во дворе.", 4.6),
    ("Мальчик играет с собакой во дворе.", "Мальчик играет с собакой во дворе.", 5.0),
    ("Женщина режет лук на кухне.", "Женщина нарезает лук.", 4.6),
    ("Женщина режет лук на кухне.", "Мужчина чинит велосипед в гараже.", 0.0),
    ("Поезд прибыл на станцию с опозданием.", "Поезд опоздал на станцию.", 4.2),
    ("Поезд прибыл на станцию с опозданием.", "Самолёт вылетел вовремя.", 1.0),
    ("Кошка спит на подоконнике.", "Кот дремлет у окна.", 4.0),
    ("Кошка спит на подоконнике.", "Собака лает на прохожих.", 0.6),
    ("Дети катаются на коньках по замёрзшей реке.", "Дети катаются на коньках.", 3.8),
    ("Дети катаются на коньках по замёрзшей реке.", "Взрослые ловят рыбу в реке.", 1.0),
    ("Учёный читает лекцию студентам.", "Профессор выступает перед студентами.", 4.0),
    ("Учёный читает лекцию студентам.", "Студенты сдают экзамен.", 1.6),
    ("Мужчина играет на гитаре.", "Человек играет на гитаре.", 4.6),
    ("Мужчина играет на гитаре.", "Мужчина играет на скрипке.", 2.5),
    ("Мужчина играет на гитаре.", "Женщина поёт песню.", 1.0),
    ("Цены на нефть выросли на три процента.", "Нефть подорожала на 3%.", 4.6),
    ("Цены на нефть выросли на три процента.", "Цены на нефть упали на три процента.", 2.0),
    ("Цены на нефть выросли на три процента.", "В Москве открылся новый музей.", 0.0),
    ("Девушка едет на велосипеде по парку.", "Девушка катается на велосипеде.", 4.2),
    ("Девушка едет на велосипеде по парку.", "Парень бежит по парку.", 1.8),
    ("Повар готовит суп.", "Повар варит суп на плите.", 4.4),
    ("Повар готовит суп.", "Официант несёт салат.", 1.2),
    ("Старик кормит голубей в сквере.", "Пожилой мужчина кормит птиц.", 4.0),
    ("Старик кормит голубей в сквере.", "Голуби сидят на крыше.", 1.6),
    ("Идёт сильный дождь, и улицы пусты.", "На улице ливень, людей нет.", 4.4),
    ("Идёт сильный дождь, и улицы пусты.", "Светит солнце, в парке много людей.", 0.4),
    ("Он сказал: \"Я приду завтра\".", "Он пообещал прийти завтра.", 4.0),
    ("Он сказал: \"Я приду завтра\".", "Она сказала, что придёт сегодня.", 2.0),
    ("Хирург провёл сложную операцию.", "Врач успешно прооперировал пациента.", 3.6),
    ("Хирург провёл сложную операцию.", "Пациент ждёт в очереди.", 1.2),
    ("Команда выиграла матч со счётом 2:1.", "Команда победила 2:1.", 4.8),
    ("Команда выиграла матч со счётом 2:1.", "Команда проиграла матч.", 1.8),
    ("Мама читает сказку детям перед сном.", "Мать читает детям книгу.", 4.0),
    ("Мама читает сказку детям перед сном.", "Дети смотрят мультфильм.", 1.0),
    ("Птица вьёт гнездо на дереве.", "На дереве птица строит гнездо.", 5.0),
    ("Птица вьёт гнездо на дереве.", "Рыба плывёт в реке.", 0.0),
    ("Строители возводят новый мост через реку.", "Через реку строят мост.", 4.2),
    ("Строители возводят новый мост через реку.", "Старый мост закрыт на ремонт.", 2.4),
    ("Первая строка письма.\nВторая строка письма.", "Письмо из двух строк.", 2.5),
    ("В библиотеке тихо, все читают книги, журналы и газеты, а за окном идёт снег, "
     "и кажется, что зима никогда не кончится, хотя уже март.", "В библиотеке читают книги.", 2.8),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "stsb_dev.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["sentence1", "sentence2", "similarity_score"])
        for a, b, score in PAIRS:
            writer.writerow([a, b, score])
    gold = np.array([score for _, _, score in PAIRS])
    expected = {}
    for name in MODELS:
        model = SentenceTransformer(os.path.join(FIXTURES, "models", name), device="cpu")
        left = model.encode([a for a, _, _ in PAIRS], normalize_embeddings=True)
        right = model.encode([b for _, b, _ in PAIRS], normalize_embeddings=True)
        scores = np.sum(left * right, axis=1)
        expected[name] = {
            "sts": float(scipy.stats.spearmanr(gold, scores).correlation),
            "cosines": [float(s) for s in scores],
        }
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"pairs": len(PAIRS), "models": expected}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for name in MODELS:
        print(name, expected[name]["sts"])


if __name__ == "__main__":
    main()
