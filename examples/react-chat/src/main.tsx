import { createRoot } from 'react-dom/client';
import { App } from './App';
import './chat.css';

createRoot(document.getElementById('root')!).render(<App />);
