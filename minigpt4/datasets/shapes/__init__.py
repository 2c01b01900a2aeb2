"""The shapes world: a deterministic synthetic dataset in every official file format.

`python -m minigpt4.datasets.shapes --out DIR --size small` (or `generate_world(DIR, size="small", seed=0)`)
draws images of 1-3 large coloured shapes (red, green, blue, yellow x circle, square, triangle; all colours and
all shapes in one image distinct, so every referring expression is unambiguous) on a white background, and
writes the same world in the layout of each official builder and evaluation reader. Answers, captions, boxes
and expressions are correct by construction. Training files use the `train` scenes; evaluation files and the
non-train RefCOCO/OCR-VQA/Karpathy records use the held-out scenes. Sizes: small (500 + 100 images, 112 px,
about a second), medium, large; `image_size`, `num_train`, `num_heldout`, `min_objects`, `max_objects` override.

Grammar: caption "a red circle and a blue square" (objects left to right; raw files hold
"A red circle and a blue square."); phrase "red circle"; VQA "What color is the circle?" -> "red",
"What shape is the red object?" -> "circle", "How many objects are there?" -> "2",
"Is there a red square?" -> "yes"/"no". Boxes are [x, y, w, h] pixels; box strings `{<x1><y1><x2><y2>}`.

Files under DIR (paths relative to DIR):

* `truth.json`: {config, colors, shapes, images and pair_images: [{image_id, split: train|heldout, width, height, file,
  caption, objects: [{object_id, color, shape, bbox [x, y, w, h], phrase}]}]}.
* `datasets.yaml`: `datasets:` (data_type + build_info of all 25 official builders and our 2) and `evaluation_datasets:`
  (eval_file_path, img_path, max_new_tokens, batch_size), absolute paths. The `type: shapes` default YAMLs
  (`minigpt4/configs/datasets/<builder>/shapes.yaml`) hold the same with root ${oc.env:SHAPES_WORLD,outputs/shapes_world}.
* laion, cc_sbu: `laion/{00000..0000N}.tar`, `cc_sbu/...`: webdataset samples `<key>.jpg`, `<key>.json`
  {caption, url, key, width, height}, `<key>.txt`.
* cc_sbu_align: `cc_sbu_align/filter_cap.json` {annotations: [{image_id, caption}]}, `cc_sbu_align/image/<id>.jpg`.
* COCO images (train and held-out): `coco/train/COCO_train2014_<12 digits>.jpg` (images.storage `coco`, the
  builder appends /train; image_path of REC/LLaVA/multitask is `coco/train`).
* coco_caption: `coco_caption/coco_karpathy_train.json` [{image: train2014/<file> | val2014/<file>, caption, image_id}].
* coco_vqa: `vqav2/vqa_train.json`, `vqav2/vqa_val.json` [{question_id, question, answer: [10], image, dataset}].
* ok_vqa: `okvqa/okvqa_train.json` (same fields). aok_vqa: `aokvqa/aokvqa_v1p0_train.json` [{question_id,
  question, choices, correct_choice_idx, direct_answers: [10], image, image_id, split, rationales}].
* gqa: `gqa/train_balanced_questions.json` [{image: <id>.jpg, question, answer, question_id, fullAnswer}],
  images `gqa/train/<id>.jpg`: the training scenes' questions, then four per VSR training scene (below) about
  where things are ("What is the object on the left?", "Is the red circle on the left or on the right?").
* textcaps_caption: `textcaps/TextCaps_0.1_train.json` {data: [{image_id, caption_str, ...}]},
  `textcaps/train_images/<image_id>.jpg`.
* ocrvqa: `ocrvqa/dataset.json` {B<9 digits>: {imageURL, questions, answers, title, authorName, genre,
  split: 1 train | 2 held-out}}, `ocrvqa/images/B<9 digits>.jpg`.
* refcoco/refcocop/refcocog (+ inv*): `refcoco_annotations/<refcoco|refcoco+|refcocog>/refs(unc|umd).p`
  (list of refs {ref_id, ann_id, image_id, split: train|val|testA|testB|test, category_id, file_name, sent_ids,
  sentences: [{raw, sent, tokens, sent_id}]}) and `instances.json` {images, annotations: [{id, image_id, bbox,
  area, category_id}], categories}. Sentences: refcoco "the red circle", "red circle"; refcoco+ "red circle",
  "the red one"; refcocog "the red circle in the picture", "a circle that is red".
* refvg: `visual_genome/image_data.json`, `visual_genome/region_descriptions.json` (one region per object,
  phrase "a red circle", plus "the white background" covering the image, dropped by the official
  area < 16384 filter when the image side is >= 128), images `visual_genome/VG_100K[_2]/<id>.jpg`.
* flickr_*: `filtered_flickr/groundedcaption.json` [{image_id, grounded_caption: "<p>a red circle</p> {box} and
  ..."}], `captiontobbox.json` [{image_id, caption, output: "<p>red circle</p> {box} <p>...</p> {box}"}],
  `phrasetobbox.json` [{image_id, phrase, bbox}], images `filtered_flickr/images/<id>.jpg`.
* llava_*: `llava/detail_23k.json`, `complex_reasoning_77k.json`, `conversation_58k.json` [{id: 12 digits,
  image, conversations: [{from: human|gpt, value}]}] over the COCO images.
* multitask_conversation: `multitask_conversation/multitask_conversation.json` (3 turns: [vqa], [refer],
  [identify]).
* unnatural_instruction: `unnatural_instructions/filtered_unnatural_instruction.json` [{instruction,
  instances: [{instruction_with_input, input, constraints (str or null), output}]}], two per training scene:
  "The image shows a red circle. Is there a blue circle?" -> "no" (the VQA yes/no question asked of a description).
* vsr (ours): `vsr/train.jsonl` lines {image: <12 digits>.jpg, caption: "The red circle is left of the blue
  square.", label: 1|0, relation, subj, obj}, each training two-object scene stated both ways; images
  `vsr/images/`. The VSR files use their own scenes (`pair_images` in truth.json): two objects apart
  horizontally, `num_train // 2` training and `num_heldout` held-out ones, whatever the world's objects per image.
* no builder: `two_object_captions/` in the cc_sbu_align layout over the two-object training scenes ("The image
  shows a red circle and a blue square on a white background.", left to right), read only by the quickstart's
  encoder pretraining (minigpt4/runners/encoder_recipe.py) beside cc_sbu_align.
* hateful_memes (ours): `hm/train.jsonl` lines {id, img: img/<5+ digits>.png, label, text} over the training
  scenes (label as the HM evaluation file's below); images `hm/img/`, image_path `hm`.
* vizwiz (ours): `vizwiz/train.json` [{image: VizWiz_train_<8 digits>.jpg, question, answers, answer_type,
  answerable}] over the training scenes, as the VizWiz evaluation file below; images `vizwiz/train/`.
* MiniGPT-5 (`minigpt5_files.py`; one shape per image, their own scenes; each data file has a
  `<stem>_truth.json` beside it: per sample with an output image, the colour and shape it must show):
  cc3m: `cc3m/cc3m_train.tsv`, `cc3m/cc3m_val.tsv` (`caption<TAB>image_path`, "A red circle.", images
  `cc3m/images/`; two colour-shape pairs never in training, held-out rows use all twelve);
  vist: `vist/{train,val}_cleaned.json` + `vist/{train,val}_image_mapping.json`, images `vist/images/`: stories
  introducing 2-3 objects ("there is a red circle.", "then a blue square appears.") ending with one named by
  shape or colour only ("the circle comes back.");
  mmdialog: `mmdialog/{train,test}/{train,test}_conversations.txt` (JSON lines, images `<media id>.jpg` beside):
  an object shown, another answered, one asked for again by shape or colour, "Here it is." with its image.

Evaluation files (held-out scenes), for the readers in minigpt4/evaluation:

* RefCOCO/+/g: `eval/<ds>/<ds>_<split>.json` (ds refcoco, refcoco+: val/testA/testB; refcocog: val/test)
  [{img_id: COCO_train2014_<12 digits>_<object id>, sents, bbox [x, y, w, h], height, width}];
  eval_file_path `eval`, img_path `coco/train`.
* OKVQA: `eval/okvqa/okvqa_test_split.json` [{image_id, question, question_id, answer}],
  `eval/okvqa/OpenEnded_mscoco_val2014_questions_clean.json` {info, license, task_type, data_type,
  data_subtype, questions: [{image_id, question, question_id}]}, `eval/okvqa/mscoco_val2014_annotations_clean.json`
  {info, license, data_type, data_subtype, annotations: [{image_id, question_id, question_type, answer_type,
  multiple_choice_answer, answers: [{answer, raw_answer, answer_confidence, answer_id} x 10]}]};
  images `eval/okvqa/images/<image_id, 12 digits>.jpg`.
* VizWiz: `eval/vizwiz/val.json` [{image: VizWiz_val_<8 digits>.jpg, question, answers: [{answer,
  answer_confidence} x 10], answer_type, answerable}] (questions about an absent shape answer
  "unanswerable"); images `eval/vizwiz/val/`.
* IconQA: `eval/iconqa/choose_text_val.json` [{image_id, question, choices, answer: index, ques_type, grade,
  label}]; images `eval/iconqa/images/<image_id>/image.png`.
* GQA: `eval/gqa/testdev_balanced_questions.json` [{image: <id>.jpg, question, answer, question_id,
  fullAnswer}]; images `eval/gqa/images/`.
* VSR: `eval/vsr/test.jsonl` lines {image: <12 digits>.jpg, caption: "The red circle is left of the blue
  square.", label: 1|0, relation, subj, obj}, one per held-out two-object scene; images `eval/vsr/images/`.
* HM: `eval/hm/dev.jsonl` lines {id, img: img/<5 digits>.png, label, text}; label 1 means the text does not
  describe the image (a synthetic stand-in for "hateful"); images `eval/hm/img/`, img_path `eval/hm`.
* VQAv2 (not in the official scripts): `eval/vqav2/v2_OpenEnded_mscoco_val2014_questions.json` and
  `eval/vqav2/v2_mscoco_val2014_annotations.json` (official VQA format, as OKVQA's); images
  `eval/vqav2/images/COCO_val2014_<12 digits>.jpg`.
* COCO caption (not in the official scripts): `eval/coco_caption/coco_karpathy_test.json` [{image:
  COCO_train2014_<12 digits>.jpg, caption: [sentence], image_id}]; img_path `coco/train`.
"""

from minigpt4.datasets.shapes.world import ENV_ROOT, WorldInfo, datasets_section, generate_world, load_truth

__all__ = ["ENV_ROOT", "WorldInfo", "datasets_section", "generate_world", "load_truth"]
