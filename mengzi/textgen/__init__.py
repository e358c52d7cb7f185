"""Text generation with the Mengzi T5 and GPT-Neo models: fine-tuning, decoding, metrics.

    config.py    TextGenConfig (fine-tuning recipe), GenerationOptions (decoding), GenerateConfig (the command)
    metrics.py   character ROUGE-1/2/L, BLEU (sacrebleu zh), exact match, keyword F1: a registry (torch-free)
    data.py      CSL abstract -> keywords, your source/target files, text corpora with a stable held-out split
    train.py     train_textgen(cfg, splits=None): seq2seq (T5) or causal LM (GPT-Neo) on accelerate, resumable
    generate.py  generate(model, tokenizer, texts, options), perplexity(...), load_generator(checkpoint)

Importing this package does not import torch; train.py and generate.py's functions do on use.
"""
