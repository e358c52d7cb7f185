# Two commands for a fresh machine:
#   make demo   creates .venv, installs, runs the main pipeline end to end on the data in $(DATA)
#   make test   creates .venv, installs, runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
DATA   ?= ../shared/data
RUN    ?= runs/demo
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export DATA
export HF_HUB_OFFLINE ?= 1
# a CSL dev abstract (shortened) for the generation steps of the demo
CSL_ABSTRACT := 为解决传统均匀FFT波束形成算法引起的3维声呐成像分辨率降低的问题,该文提出分区域FFT波束形成算法.

.PHONY: install constraints demo test lint bench clean

install: $(STAMP)

# Idempotent: the venv is created once, and packages are reinstalled only when pyproject.toml or constraints.txt
# changes. Every install reads constraints.txt (exact versions of everything installed), so a dependency released
# overnight changes nothing here or in CI; `make constraints` rewrites it on purpose.
# torch goes first: the CPU build (torch==2.13.0) on machines without CUDA, so the `torch` requirement in
# pyproject.toml is already met and pip never pulls several GB of CUDA wheels; the CUDA build where a GPU is.
PIP := $(BIN)/python -m pip install -q -c constraints.txt
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip setuptools wheel
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	    echo "CUDA GPU found: installing the CUDA build of torch"; $(PIP) torch; \
	else \
	    echo "no CUDA GPU: installing the CPU build torch==2.13.0"; $(PIP) torch==2.13.0; \
	fi
	$(PIP) -e '.[dev]'
	@touch $(STAMP)

# Deliberate bump of constraints.txt: resolve today's releases in a scratch venv (no constraints), keep the header.
constraints:
	rm -rf .venv-bump && $(PYTHON) -m venv .venv-bump
	.venv-bump/bin/python -m pip install -q --upgrade pip setuptools wheel
	.venv-bump/bin/python -m pip install -q torch==2.13.0 && .venv-bump/bin/python -m pip install -q '.[dev]'
	{ grep '^#' constraints.txt; .venv-bump/bin/python -m pip freeze --all --exclude mengzi | sed 's/+cpu$$//'; } \
	    > constraints.new && mv constraints.new constraints.txt && rm -rf .venv-bump
	@echo "constraints.txt rewritten: run make test, then commit it alone"

# The most complete pipeline that exists today: data check -> tokenizer training -> model init from presets
# -> load + tokenize + segment + encode real text -> pre-training -> CLUE fine-tuning of the pre-trained model,
# test predictions, a validated submission zip -> ONNX export (fused, INT8, gated) and ONNX Runtime predictions.
demo: install
	$(BIN)/mengzi data check
	$(BIN)/mengzi presets
	$(BIN)/mengzi tokenizer train --config recipes/tokenizer/t5-unigram-tiny.yaml --out $(RUN)/t5-tokenizer --overwrite
	$(BIN)/mengzi init mengzi-bert-tiny $(RUN)/bert-tiny --overwrite
	$(BIN)/mengzi init mengzi-t5-tiny $(RUN)/t5-tiny --tokenizer $(RUN)/t5-tokenizer --overwrite
	$(BIN)/mengzi init mengzi-gpt-neo-tiny $(RUN)/gpt-neo-tiny --overwrite
	$(BIN)/mengzi info $(RUN)/bert-tiny --text "孟子预训练模型由澜舟科技发布，Mengzi-BERT在CLUE上表现很好！"
	$(BIN)/mengzi info $(RUN)/t5-tiny --text "孟子预训练模型由澜舟科技发布，Mengzi-BERT在CLUE上表现很好！"
	# pre-training: Mengzi's recipe (whole-word MLM + SOP + POS) for 40 steps on one corpus file
	$(BIN)/mengzi pretrain --config recipes/pretrain/mengzi-bert-tiny.yaml --out $(RUN)/pretrain-bert-tiny \
	    --corpus.sources data:corpus/uer_samples/CLUECorpusSmall_sampled.txt --corpus.num-proc 1 \
	    --train.max-steps 40 --train.warmup-steps 10 --train.eval-every 20 --train.save-every 20 --overwrite
	$(BIN)/mengzi info $(RUN)/pretrain-bert-tiny/model --text "孟子预训练模型由澜舟科技发布。"
	# CLUE: fine-tune that model on AFQMC and CSL (a 2,000-example slice, 1 epoch), predict their test sets,
	# zip the predictions under the official names and check the zip
	for task in afqmc csl; do \
	  $(BIN)/mengzi clue run $$task --recipe recipes/clue/$$task-tiny.yaml --model $(RUN)/pretrain-bert-tiny/model \
	      --out $(RUN)/clue-$$task --train.max-train-examples 2000 --train.epochs 1 --overwrite || exit 1; \
	done
	$(BIN)/mengzi clue submit $(RUN)/clue-afqmc $(RUN)/clue-csl --out $(RUN)/clue_submission.zip
	$(BIN)/mengzi clue validate $(RUN)/clue_submission.zip
	# deployment: the AFQMC run to ONNX (fused + INT8; numeric gate, and the task gate on 1,000 dev pairs), then
	# predictions with ONNX Runtime alone: one pair, and the AFQMC test file in the official format
	$(BIN)/mengzi export $(RUN)/clue-afqmc --out $(RUN)/export-afqmc --optimize --quantize int8 \
	    --check-data dev --check-examples 1000 --overwrite
	$(BIN)/mengzi predict $(RUN)/export-afqmc --text 花呗怎么还款 --text-pair 花呗如何还钱
	$(BIN)/mengzi predict $(RUN)/export-afqmc --clue --out $(RUN)/export-afqmc/predictions
	# generation: CSL keyword generation with the demo's T5 (40 steps), beam search from the checkpoint, then the
	# same from its ONNX export (KV cache); the tiny GPT-Neo on the classic novels, perplexity before/after, sampling
	$(BIN)/mengzi textgen train --config recipes/textgen/csl-keywords-tiny.yaml --model $(RUN)/t5-tiny \
	    --out $(RUN)/textgen-csl --train.max-steps 40 --train.max-train-examples 640 --train.max-eval-examples 32 \
	    --train.eval-every 20 --train.save-every 20 --overwrite
	$(BIN)/mengzi generate $(RUN)/textgen-csl/model --text "关键词：$(CSL_ABSTRACT)" --num-beams 3 --max-new-tokens 16
	$(BIN)/mengzi export $(RUN)/textgen-csl/model --out $(RUN)/export-t5 --overwrite
	$(BIN)/mengzi generate $(RUN)/export-t5 --text "关键词：$(CSL_ABSTRACT)" --num-beams 3 --max-new-tokens 16
	$(BIN)/mengzi textgen train --config recipes/textgen/classics-gpt-neo-tiny.yaml --out $(RUN)/textgen-classics \
	    --train.max-steps 30 --train.eval-every 15 --train.save-every 15 --overwrite
	$(BIN)/mengzi generate $(RUN)/textgen-classics/model --text 话说宝玉 --do-sample --top-p 0.9 --max-new-tokens 30
	# CLUE prompting: OCNLI zero-shot over every template with the demo's pre-trained BERT (100 dev examples)
	$(BIN)/mengzi clue prompt ocnli --config recipes/clue-prompts/ocnli-bert-tiny.yaml \
	    --model $(RUN)/pretrain-bert-tiny/model --max-examples 100 --out $(RUN)/prompt-ocnli --overwrite
	# multimodal: Oscar captioning on synthetic scenes (region features from grid boxes, not a detector), the
	# Mavors-style video LM learning temporal order, and HAIC QA on synthetic human-action clips
	$(BIN)/mengzi oscar train --config recipes/oscar/captioning-tiny.yaml --train.max-steps 200 --train-size 512 \
	    --eval-size 20 --train.save-every 100 --out $(RUN)/oscar-captioning --overwrite
	$(BIN)/mengzi oscar caption --model $(RUN)/oscar-captioning/model --synthetic 3 --fixtures --beams 2
	$(BIN)/mengzi video train --config recipes/video/temporal-order-tiny.yaml --stages '{aggregator: 10, all: 110}' \
	    --train.eval-every 60 --train.save-every 60 --out $(RUN)/video-temporal-order --overwrite
	$(BIN)/mengzi haic bench --config recipes/haic/synthetic-small.yaml --out $(RUN)/haic --overwrite
	@echo "demo finished: models, tokenizers, CLUE runs, the submission zip, ONNX exports, generation, prompting,"
	@echo "Oscar, video and HAIC runs in $(RUN)/"

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check mengzi clue export tests benchmarks

bench: install
	$(BIN)/python benchmarks/tokenizer_bench.py

clean:
	rm -rf $(VENV) runs build *.egg-info .pytest_cache
