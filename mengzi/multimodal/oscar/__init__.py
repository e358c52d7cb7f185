"""Oscar-style image-text for Mengzi: captioning and retrieval over `[CLS] caption [SEP] tags [SEP]` + regions.

* `regions`: region features (2054 dims) from pluggable box proposers + appearance encoders, NOT a detector;
  or precomputed detector features from a file.
* `tags`: English->Chinese object tags (curated map, package data `tags_en_zh.tsv`).
* `inputs`, `decode`: the input layout, Oscar's caption masking, greedy / beam decoding.
* `data`: synthetic shape scenes with generated Chinese captions, scikit-image fixtures, JSONL files.
* `train` (`OscarTrainConfig`, `oscar_train`), `caption` (`OscarCaptionConfig`, `oscar_caption`), `evaluate`.

The models live in `mengzi.models.oscar` (`MengziOscarModel`, `MengziOscarForCaptioning`,
`MengziOscarForRetrieval`). Submodules import numpy/torch; this package imports nothing.
"""
