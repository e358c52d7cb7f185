"""The fine-tuning engine shared by the CLUE harness (`mengzi clue run`) and `mengzi finetune` on your own data.

    kinds.py        what a task looks like to the model: classification, multiple choice, span extraction
    batches.py      length-grouped batches with dynamic padding
    techniques/     adversarial training, EMA, R-Drop, layer-wise lr decay, distillation, LoRA, ... (a registry)
    trainer.py      one seed: the loop, evaluation, best checkpoint, resume
    run.py          a run: seeds, logit-averaged ensembles, the run folder
    userdata.py     CSV / TSV / JSONL with your own column names
    metrics.py, spans.py   numpy / pure Python (no torch): the deployment runtime shares them

Importing this package stays light (no torch), so `mengzi.clue` and the torch-free predictor can use the
pure-Python parts.
"""
