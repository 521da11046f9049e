"""The tokenizer's properties: ``properties`` checks a tokenizer (round trip, truncation, padding, offsets,
reload) and measures its fit to the domain, ``normalisers`` models what each tokenizer family's normaliser
does to text, ``strategies`` generates the texts hypothesis tries."""
