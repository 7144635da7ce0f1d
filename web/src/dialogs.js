// The plain dialogs the files view and its bulk actions share.
import { useState } from 'preact/hooks';
import { html, Modal, ErrorLine } from './ui.js';

// A dialog with one text field; onSubmit(value) may throw to show an error.
export function PromptDialog({ title, label, initial, submitLabel, onSubmit, onClose }) {
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      await onSubmit(new FormData(e.target).get('value'));
      onClose();
    } catch (err) {
      setError(err);
    }
  };
  return html`<${Modal} title=${title} onClose=${onClose}>
    <form onSubmit=${submit}>
      <label>${label}<input name="value" defaultValue=${initial || ''} required autofocus
        onFocus=${(e) => {
          const v = e.target.value, dot = v.lastIndexOf('.');
          e.target.setSelectionRange(0, dot > 0 && !v.includes('/') ? dot : v.length);
        }} /></label>
      <${ErrorLine} error=${error} />
      <div class="actions"><button type="button" onClick=${onClose}>Cancel</button>
        <button class="primary">${submitLabel}</button></div>
    </form>
  <//>`;
}

export function ConfirmDialog({ title, text, confirmLabel, onConfirm, onClose }) {
  const [error, setError] = useState(null);
  return html`<${Modal} title=${title} onClose=${onClose}>
    <p>${text}</p>
    <${ErrorLine} error=${error} />
    <div class="actions"><button type="button" onClick=${onClose} autofocus>Cancel</button>
      <button type="button" class="danger" onClick=${async () => {
        try {
          await onConfirm();
          onClose();
        } catch (err) {
          setError(err);
        }
      }}>${confirmLabel}</button></div>
  <//>`;
}
